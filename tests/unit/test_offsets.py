"""Reading the log's positions survives a group coordinator that is not ready yet, and its ends need none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from lambdalake import offsets


class Consumer:
    """Answers `committed` with the given errors first, then with offset 7 in each partition."""

    def __init__(self, errors: list[int]) -> None:
        self.errors, self.asked = errors, 0

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None, 1: None})})

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.asked += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0), "Failed to get committed offsets"))
        return [TopicPartition(p.topic, p.partition, 7) for p in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, 10


def test_a_coordinator_not_ready_is_asked_again() -> None:
    consumer = Consumer([KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS])
    found = offsets._positions(consumer, "t")
    assert consumer.asked == 3
    assert [(p.partition, p.high, p.committed, p.unread) for p in found] == [(0, 10, 7, 3), (1, 10, 7, 3)]


def test_an_error_asking_again_cannot_cure_is_raised_at_once() -> None:
    consumer = Consumer([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException, match="Failed to get committed offsets"):
        offsets._positions(consumer, "t")
    assert consumer.asked == 1


def test_the_log_s_ends_are_read_without_the_group_coordinator() -> None:
    """B's high watermarks and a restart's first offsets need no group: no coordinator to wait for."""
    consumer = Consumer([KafkaError.NOT_COORDINATOR] * 100)
    assert offsets._watermarks(consumer, "t") == {0: (0, 10), 1: (0, 10)}
    assert consumer.asked == 0


def test_a_retriable_error_reading_the_ends_is_asked_again() -> None:
    class Leaderless(Consumer):
        def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
            self.asked += 1
            if self.asked == 1:
                raise KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE, "no leader yet", retriable=True))
            return 2, 5

    consumer = Leaderless([])
    assert offsets._watermarks(consumer, "t") == {0: (2, 5), 1: (2, 5)}
    assert consumer.asked == 3
