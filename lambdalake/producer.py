"""Send generated events to Kafka: idempotent (acks=all), paced by count or by rate."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from lambdalake.config import Config
from lambdalake.errors import LambdalakeError
from lambdalake.generator import EventGenerator, Summary

#: records up to this size are accepted by the broker (the ingest job rejects those over 1 MiB)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: in rate mode, every BURST_EVERY seconds the rate triples for BURST_SECONDS seconds
BURST_EVERY, BURST_SECONDS, BURST_FACTOR = 10, 2, 3


def make_producer(config: Config):  # type: ignore[no-untyped-def]
    from confluent_kafka import Producer

    return Producer({
        "bootstrap.servers": config.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "compression.type": "lz4",
        "message.max.bytes": MAX_MESSAGE_BYTES,
        "log_level": 3,
    })


def produce(config: Config, generator: EventGenerator, topic: str, *, count: int | None = None,
            rate: float | None = None, duration: float | None = None,
            progress: Callable[[int], None] = lambda sent: None) -> Summary:
    """Send `count` records as fast as possible, or `rate` records/s for `duration` seconds.

    Returns the exact count of what Kafka acknowledged, by kind; raises if any record failed.
    """
    if (count is None) == (rate is None or duration is None):
        raise LambdalakeError("give either --count, or --rate with --duration")
    producer = make_producer(config)
    summary = Summary(topic)
    failures: list[str] = []

    def delivered(error, message) -> None:  # type: ignore[no-untyped-def]
        if error is not None:
            failures.append(str(error))

    started = time.monotonic()
    records = generator.records()
    due = started
    for sent in itertools.count():
        if count is not None and sent >= count:
            break
        if rate is not None:
            now = time.monotonic()
            if now - started >= duration:  # type: ignore[operator]
                break
            bursting = int(now - started) % BURST_EVERY < BURST_SECONDS
            due += 1 / (rate * (BURST_FACTOR if bursting else 1))
            time.sleep(max(0.0, due - now))
        record = next(records)
        while True:
            try:
                producer.produce(topic, key=record.key, value=record.value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)  # the local queue is full: let deliveries drain it
        summary.by_kind[record.kind] += 1
        producer.poll(0)
        if sent % 500 == 0:
            progress(sent)
    remaining = producer.flush(60)
    summary.seconds = time.monotonic() - started
    progress(summary.sent)
    if failures or remaining:
        raise LambdalakeError(f"{len(failures) + remaining} of {summary.sent} records were not delivered to "
                              f"{topic}: {failures[:3]}")
    return summary
