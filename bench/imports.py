"""Importing a history file: how fast `lambdalake import` sends it, and how fast the ingest job stores it.

    .venv/bin/python -m bench.imports --events 10000000

A Parquet file of N valid events (generator shapes, event times spread over `--days` before now)
is written under the import root. `lambdalake.imports.import_file` sends it to a fresh topic (4
partitions) in one transaction, timed: the send rate. An ingest job of the bench's own, started
before, stores it in its own raw tables; the clock runs from the start of the send until Trino
counts all N rows: the end-to-end rate. Both go side by side with one plain Kafka consumer reading
the same topic afterwards. Everything the run made is removed afterwards.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import remove_run, save
from bench.schedules import schedules_paused
from bench.streaming import plain_consumer_rate, scalar
from lambdalake import ingest, state
from lambdalake.config import Config, load_config
from lambdalake.imports import import_file

TYPES = np.array(["page_view", "search", "click", "add_to_cart", "purchase"])


def history_file(config: Config, events: int, name: str, days: int = 365, ordered: bool = False) -> tuple[str, float]:
    """A Parquet file of `events` valid events over the `days` before now, under the import root
    (in event-time order when `ordered`, as an export by time is); its path and size in MiB."""
    rng = np.random.default_rng(21)
    path = config.paths.import_root / "bench" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    now = np.datetime64(datetime.now(timezone.utc).replace(tzinfo=None), "us")
    writer = None
    for offset in range(0, events, 1_000_000):
        n = min(1_000_000, events - offset)
        kinds = TYPES[rng.integers(0, len(TYPES), n)]
        ids = [str(uuid.UUID(int=int(i), version=4)) for i in rng.integers(0, 2**63, n, dtype=np.int64)]
        chunk = pa.table({
            "event_id": ids,
            "user_id": [f"user-{u:06d}" for u in rng.integers(0, 100_000, n)],
            "session_id": [f"session-{s:08d}" for s in rng.integers(0, 10_000_000, n)],
            "event_type": kinds,
            "page": [f"/page/{p}" for p in np.minimum(rng.zipf(1.3, n), 300)],
            "product_id": [f"product-{p:05d}" for p in np.minimum(rng.zipf(1.2, n), 1000)],
            "amount": pa.array([f"{a:.2f}" if k == "purchase" else None
                                for a, k in zip(rng.uniform(1, 500, n), kinds)]).cast(pa.decimal128(12, 2)),
            "event_time": pa.array(now - (offsets_s(rng, n, offset, events, days, ordered) * 1e6).astype("timedelta64[us]"),
                                   pa.timestamp("us", tz="UTC")),
        })
        writer = writer or pq.ParquetWriter(path, chunk.schema)
        writer.write_table(chunk)
    assert writer is not None
    writer.close()
    return str(path), round(path.stat().st_size / 2**20, 1)


def offsets_s(rng: np.random.Generator, n: int, offset: int, events: int, days: int, ordered: bool) -> np.ndarray:
    """Seconds before now of n events from the offset-th: random over the days, or in order (oldest first)."""
    if not ordered:
        return rng.uniform(0, days * 86400, n)
    return days * 86400 * (1 - (offset + np.arange(n)) / events)


def main(events: int, days: int, ordered: bool, name: str) -> None:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-import-{suffix}"
    target = ingest.IngestTarget(topic, f"{topic}-ingest", f"raw.bench_import_{suffix}",
                                 f"raw.bench_import_rejected_{suffix}", f"{topic}-ingest")
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=config.kafka.replication_factor)])[topic].result(30)
    path, mib = history_file(config, events, f"history-{suffix}", days, ordered)
    try:
        ingest.start(config, target)
        time.sleep(10)
        started = time.monotonic()
        result = import_file(config, Path(path), topic)
        sent_seconds = time.monotonic() - started
        while (stored := scalar(config, f"select count(*) from {target.events_table}")) < events:
            assert time.monotonic() - started < 3600, f"only {stored} of {events} rows stored after an hour"
            time.sleep(5)
        stored_seconds = time.monotonic() - started
        consumer = plain_consumer_rate(config, topic, events)
        days = scalar(config, f"select count(distinct date(event_time)) from {target.events_table}")
    finally:
        remove_run(config, target.job_name, topic, [], [target.events_table, target.rejected_table,
                                                         f"{target.events_table}_heartbeats"])
        Path(path).unlink()
        with state.connect(config) as connection:
            connection.execute("delete from lambdalake_imports where topic = %s", (topic,))
    send_rate, stored_rate = events / sent_seconds, events / stored_seconds
    figures = {"events": events, "file_mib": mib, "event_days": days, "event_time_order": ordered,
               "accepted": result.accepted,
               "send_seconds": round(sent_seconds, 1), "send_events_per_second": round(send_rate),
               "stored_seconds": round(stored_seconds, 1), "stored_events_per_second": round(stored_rate),
               "plain_consumer_events_per_second": round(consumer),
               "stored_to_consumer_ratio": round(stored_rate / consumer, 3)}
    print(figures)
    order = "in event-time order" if ordered else "in random event-time order"
    save(name, figures, f"import of a {events:,}-event Parquet file ({mib} MiB, {days} event days, {order}): sent at "
                        f"{send_rate:,.0f} events/s, stored in raw.events at {stored_rate:,.0f} events/s end to end "
                        f"({stored_rate / consumer:.3f}x one plain consumer)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365, help="event times spread over this many days before now")
    parser.add_argument("--ordered", action="store_true", help="rows in event-time order, as an export by time is")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    with schedules_paused(load_config()):
        main(args.events, args.days, args.ordered,
             args.name or f"import-{args.events // 1_000_000}m-{args.days}d{'-ordered' if args.ordered else ''}")
