"""Heartbeats: records the broker stamps in each idle partition, so that watermarks keep moving.

The speed layer decides which copy of an event counts in ingest-time order (DESIGN.md section 5),
so it waits for the watermark: the smallest ingest time any partition has reached. A partition
that receives nothing would hold it back for ever, and the last rows of a stream that stops would
never be written. So every `[kafka] heartbeat_seconds`, each partition of a watched topic that has
received nothing since the last beat gets one record with no value and the header
HEARTBEAT_HEADER. The broker stamps it like any record (LogAppendTime), so it moves that
partition's watermark exactly as far as the partition provably is: the watermark needs no idle
timeout, and a stopped heartbeat only makes the speed layer late, never wrong.

Jobs skip heartbeats: the ingest job files their positions in `<events table>_heartbeats`, so the
batch layer knows a partition whose tail is only heartbeats is complete (lambdalake.batch).
A topic is watched once a platform job reads it (lambdalake.state.watch). Runs under supervisord as the program `kafka-heartbeat` (`python -m lambdalake.heartbeat`).
"""

from __future__ import annotations

import logging
import time

from lambdalake.config import Config, load_config
from lambdalake.state import watched

#: the Kafka header that marks a heartbeat record; consumers of the events topic skip such records
HEARTBEAT_HEADER = "lambdalake-heartbeat"

log = logging.getLogger("lambdalake.heartbeat")


class Heartbeat:
    """Beats once per call of `beat`: to each partition of the watched topics whose end offset has
    not moved since the previous call."""

    def __init__(self, config: Config) -> None:
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient

        servers = config.kafka_bootstrap
        self.config = config
        self.producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 0, "log_level": 3})
        self.admin = AdminClient({"bootstrap.servers": servers, "log_level": 3})
        #: (topic, partition) -> its end offset after the previous beat
        self.ends: dict[tuple[str, int], int] = {}

    def beat(self, topics: list[str]) -> int:
        """Send this round's heartbeats; return how many."""
        from confluent_kafka import KafkaException, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        metadata = self.admin.list_topics(timeout=10).topics
        partitions = [TopicPartition(topic, p) for topic in topics if topic in metadata
                      and metadata[topic].error is None for p in metadata[topic].partitions]
        if not partitions:
            return 0
        futures = self.admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10)
        sent = 0
        for tp, future in futures.items():
            try:
                end = future.result().offset
            except KafkaException:
                continue  # the topic is being deleted, or the partition is not ready yet
            key = (tp.topic, tp.partition)
            if self.ends.get(key) == end:  # nothing arrived since the previous beat
                try:
                    self.producer.produce(tp.topic, value=None, partition=tp.partition,
                                          headers={HEARTBEAT_HEADER: b"1"})
                except KafkaException:
                    # a partition added since the producer last read the topic's metadata: read it
                    # now (librdkafka would wait for its periodic refresh), beat it next time
                    self.producer.list_topics(tp.topic, timeout=10)
                    continue
                end += 1
                sent += 1
            self.ends[key] = end
        if self.producer.flush(10):
            raise RuntimeError("heartbeats were not acknowledged within 10 s")
        return sent


def run(config: Config) -> None:
    """Beat for ever; an unreachable engine is retried at the next beat, never fatal."""
    heartbeat = Heartbeat(config)
    topics: list[str] = []
    refreshed = 0.0
    while True:
        started = time.monotonic()
        try:
            if started - refreshed > 5:  # a newly watched topic is beating within seconds
                topics, refreshed = watched(config), started
            heartbeat.beat(topics)
        except Exception:  # noqa: BLE001 - Kafka or PostgreSQL restarting: beat again next time
            log.exception("heartbeat failed; retrying")
        time.sleep(max(0.0, config.kafka.heartbeat_seconds - (time.monotonic() - started)))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every request: what the program does
    run(load_config())
