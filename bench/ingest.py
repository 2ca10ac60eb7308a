"""Ingest throughput and freshness, measured on the running platform (`lambdalake up` first).

    .venv/bin/python bench/ingest.py --events 200000 --freshness-samples 30

Throughput: N valid events are produced to a fresh topic first; then the ingest job starts and
the clock runs until Trino counts all N in a fresh table. Reported twice: over the whole run
(job start and first checkpoint included), and between the moments 10% and 100% were visible.
Freshness: with the job running, one event a second; seconds from its produce call until a
Trino query finds its event_id. Each run uses its own topic, tables and job, removed after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime, timezone

from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake.catalog import load_catalog
from lambdalake.config import load_config
from lambdalake.generator import EventGenerator
from lambdalake.ingest import IngestTarget, start
from lambdalake.jobs import cancel
from lambdalake.producer import make_producer, produce
from lambdalake.query import run_query


def count(config, table: str) -> int:  # type: ignore[no-untyped-def]
    return run_query(config, f"select count(*) from {table}")[1][0][0]


def main(events: int, samples: int, parallelism: int) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    target = IngestTarget(f"bench-{suffix}", f"bench-{suffix}", f"raw.bench_events_{suffix}",
                          f"raw.bench_rejected_{suffix}", f"bench-ingest-{suffix}")
    admin = AdminClient({"bootstrap.servers": f"{config.host}:{config.kafka.port}"})
    admin.create_topics([NewTopic(target.topic, num_partitions=config.kafka.events_partitions,
                                  replication_factor=1)])[target.topic].result(30)
    try:
        sent = produce(config, EventGenerator(seed=1), target.topic, count=events)
        started = time.monotonic()
        start(config, target, parallelism=parallelism)
        tenth_at, seen = None, 0
        while seen < events:
            time.sleep(1)
            seen = count(config, target.events_table)
            if tenth_at is None and seen >= events / 10:
                tenth_at, tenth_seen = time.monotonic(), seen
        done = time.monotonic()

        producer, delays = make_producer(config), []
        generator = EventGenerator(seed=2).records()
        for _ in range(samples):
            record = next(generator)
            event_id = json.loads(record.value)["event_id"]
            sent_at = time.monotonic()
            producer.produce(target.topic, key=record.key, value=record.value)
            producer.flush(10)
            while not run_query(config, f"select 1 from {target.events_table} where event_id = '{event_id}'")[1]:
                time.sleep(0.2)
            delays.append(time.monotonic() - sent_at)
            time.sleep(max(0.0, 1 - (time.monotonic() - sent_at)))
        return {
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "events": sent.sent,
            "parallelism": parallelism,
            "produce_events_per_s": round(sent.sent / sent.seconds),
            "ingest_events_per_s_whole_run": round(events / (done - started)),
            "ingest_events_per_s_10_to_100_percent": round((events - tenth_seen) / (done - tenth_at))
            if tenth_at and done > tenth_at else None,
            "freshness_s_p50": round(statistics.median(delays), 2),
            "freshness_s_p95": round(statistics.quantiles(delays, n=20)[-1], 2) if len(delays) >= 2 else None,
            "checkpoint_interval": config.flink.checkpoint_interval,
        }
    finally:
        cancel(config, target.job_name)
        admin.delete_topics([target.topic])[target.topic].result(30)
        catalog = load_catalog(config)
        for table in (target.events_table, target.rejected_table):
            if catalog.table_exists(table):
                catalog.purge_table(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--freshness-samples", type=int, default=30)
    parser.add_argument("--parallelism", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(main(args.events, args.freshness_samples, args.parallelism), indent=2))
