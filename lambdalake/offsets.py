"""Where things stand in the Kafka log: the end of each partition, what a consumer group has
committed, and when a record reached Kafka. The one Kafka consumer client the batch layer (B),
the speed layer (restart cut-off) and reprocessing (lag) read the log's positions with.

The broker stamps records (LogAppendTime), so within a partition a later record is never stamped
earlier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from lambdalake.config import Config
from lambdalake.errors import EngineError

T = TypeVar("T")


@dataclass(frozen=True)
class Position:
    """One partition of a topic: its first and next offsets, and the next one the group reads."""

    partition: int
    low: int
    high: int
    #: the group's committed offset, or low when it has committed nothing
    committed: int

    @property
    def unread(self) -> int:
        return max(self.high - self.committed, 0)


@contextmanager
def _consumer(config: Config, group_id: str) -> Iterator[Any]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": config.kafka_bootstrap, "group.id": group_id,
                         "enable.auto.commit": False, "log_level": 0})
    try:
        yield consumer
    finally:
        consumer.close()


def _partitions(consumer: Any, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=10)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise EngineError(f"Kafka topic {topic!r} not found; see `lambdalake status` and the topic name")
    return sorted(metadata.topics[topic].partitions)


def _retriable(exc: BaseException) -> bool:
    """A Kafka error that asking again can cure: one the client marks retriable, or the group
    coordinator not ready (which the client does not always mark)."""
    from confluent_kafka import KafkaError, KafkaException

    if not isinstance(exc, KafkaException) or not exc.args or not isinstance(exc.args[0], KafkaError):
        return False
    error = exc.args[0]
    return error.retriable() or error.code() in (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                                 KafkaError.COORDINATOR_NOT_AVAILABLE)


def _asked_again(ask: Callable[[], T]) -> T:
    """ask(), asked again (for up to about 30 s) while Kafka answers with a retriable error:
    NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS while the broker still loads its group
    coordinators, as on the first ask after `up`."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    for attempt in Retrying(retry=retry_if_exception(_retriable), stop=stop_after_delay(30),
                            wait=wait_exponential(multiplier=0.2, max=4), reraise=True):
        with attempt:
            return ask()
    raise AssertionError("unreachable: Retrying reraises the last error")


def _positions(consumer: Any, topic: str) -> list[Position]:
    """The positions, with the group's committed offsets (which its group coordinator answers)."""
    from confluent_kafka import TopicPartition

    partitions = [TopicPartition(topic, p) for p in _partitions(consumer, topic)]

    def ask() -> list[Position]:
        found = []
        for committed in consumer.committed(partitions, timeout=10):
            low, high = consumer.get_watermark_offsets(committed, timeout=10)
            found.append(Position(committed.partition, low, high,
                                  committed.offset if committed.offset >= 0 else low))
        return found

    return _asked_again(ask)


def _watermarks(consumer: Any, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition, its first and next offsets: the partition leaders answer, no group coordinator."""
    from confluent_kafka import TopicPartition

    partitions = _partitions(consumer, topic)
    return _asked_again(lambda: {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                                 for p in partitions})


def positions(config: Config, topic: str, group_id: str = "lambdalake-offsets") -> list[Position]:
    """Every partition of topic, with the group's committed offset (EngineError if the topic is missing)."""
    with _consumer(config, group_id) as consumer:
        return _positions(consumer, topic)


def watermarks(config: Config, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition, its first offset and the offset the next record will get (EngineError if
    the topic is missing). Reads no group's offsets."""
    with _consumer(config, "lambdalake-offsets") as consumer:
        return _watermarks(consumer, topic)


def high_watermarks(config: Config, topic: str) -> dict[int, int]:
    """Per partition, the offset the next record will get."""
    return {partition: high for partition, (_, high) in watermarks(config, topic).items()}


def lag(config: Config, topic: str, group_id: str) -> int:
    """Records of topic the group has not committed, over all partitions (all of them before any commit)."""
    return sum(p.unread for p in positions(config, topic, group_id))


def first_unread_times(config: Config, topic: str, group_id: str, *, events_only: bool = False) -> list[datetime]:
    """Per partition, when the first record the group has not committed reached Kafka (none when
    it has committed them all). events_only: skip the platform's heartbeats (lambdalake.heartbeat),
    which every idle partition receives each second: a partition with only heartbeats unread has
    no event waiting."""
    from confluent_kafka import TopicPartition

    from lambdalake.heartbeat import HEARTBEAT_HEADER

    times = []
    with _consumer(config, group_id) as consumer:
        for position in _positions(consumer, topic):
            if position.unread == 0:
                continue
            consumer.assign([TopicPartition(topic, position.partition, position.committed)])
            offset = position.committed
            while offset < position.high:
                # no more than are there: consume waits for num_messages until the timeout
                messages = consumer.consume(num_messages=min(500 if events_only else 1, position.high - offset),
                                            timeout=10)
                if not messages or any(m.error() is not None for m in messages):
                    raise EngineError(f"could not read {topic}[{position.partition}] at offset {offset}")
                first = next((m for m in messages if not (events_only and any(
                    key == HEARTBEAT_HEADER for key, _ in (m.headers() or [])))), None)
                if first is not None:
                    times.append(datetime.fromtimestamp(first.timestamp()[1] / 1000, timezone.utc))
                    break
                offset = messages[-1].offset() + 1
    return times
