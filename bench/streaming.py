"""Throughput and freshness of the streaming jobs (ingest, speed) on the running platform.

    .venv/bin/python bench/streaming.py --job ingest --events 100000 --freshness-samples 20
    .venv/bin/python bench/streaming.py --job speed  --events 100000 --freshness-samples 20

Throughput: N valid events are produced to a fresh topic first; then the job starts and the
clock runs until Trino sees all N (`raw.events` rows for ingest; the sum of
`speed.events_per_type` for speed). Reported over the whole run (job start and first
checkpoint included) and between the moments 10% and 100% were visible.
Freshness: with the job running, one event a second, each on a page of its own; seconds from
its produce call until Trino finds it (in raw.events, or in speed.page_views_per_page).
Each run uses its own topic, tables and job, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime, timezone

from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake import ingest, speed
from lambdalake.catalog import load_catalog
from lambdalake.config import Config, load_config
from lambdalake.generator import EventGenerator
from lambdalake.jobs import cancel
from lambdalake.producer import make_producer, produce
from lambdalake.query import run_query
from lambdalake.views import load_views


def scalar(config: Config, sql: str) -> int:
    return run_query(config, sql)[1][0][0] or 0


def main(job: str, events: int, samples: int, parallelism: int) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-{suffix}"
    if job == "ingest":
        target = ingest.IngestTarget(topic, topic, f"raw.bench_events_{suffix}", f"raw.bench_rejected_{suffix}",
                                     f"bench-ingest-{suffix}")
        tables = [target.events_table, target.rejected_table]
        visible = f"select count(*) from {target.events_table}"
        found = f"select count(*) from {target.events_table} where page = '{{page}}'"
        submit = lambda: ingest.start(config, target, parallelism=parallelism)  # noqa: E731
    else:
        target = speed.SpeedTarget(topic, topic, f"bench-speed-{suffix}", f"__b{suffix}")
        tables = [target.table(view) for view in load_views()]
        visible = f"select sum(events) from speed.events_per_type{target.table_suffix}"
        found = f"select count(*) from speed.page_views_per_page{target.table_suffix} where page = '{{page}}'"
        submit = lambda: speed.start(config, target, parallelism=parallelism)  # noqa: E731
    admin = AdminClient({"bootstrap.servers": f"{config.host}:{config.kafka.port}"})
    admin.create_topics([NewTopic(topic, num_partitions=config.kafka.events_partitions,
                                  replication_factor=1)])[topic].result(30)
    try:
        sent = produce(config, EventGenerator(seed=1), topic, count=events)
        started = time.monotonic()
        submit()
        tenth_at, tenth_seen, seen = None, 0, 0
        while seen < events:
            time.sleep(1)
            seen = scalar(config, visible)
            if tenth_at is None and seen >= events / 10:
                tenth_at, tenth_seen = time.monotonic(), seen
        done = time.monotonic()

        producer, delays = make_producer(config), []
        generated = EventGenerator(seed=2).records()
        for _ in range(samples):
            event = json.loads(next(generated).value)
            event.update(event_type="page_view", page=f"/bench/{uuid.uuid4().hex}")
            sent_at = time.monotonic()
            producer.produce(topic, key=event["user_id"].encode(), value=json.dumps(event).encode())
            producer.flush(10)
            while not scalar(config, found.format(page=event["page"])):
                time.sleep(0.2)
            delays.append(time.monotonic() - sent_at)
            time.sleep(max(0.0, 1 - (time.monotonic() - sent_at)))
        return {
            "job": job,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "events": sent.sent,
            "parallelism": parallelism,
            "produce_events_per_s": round(sent.sent / sent.seconds),
            "events_per_s_whole_run": round(events / (done - started)),
            "events_per_s_10_to_100_percent": round((events - tenth_seen) / (done - tenth_at))
            if tenth_at and done > tenth_at else None,
            "freshness_s_p50": round(statistics.median(delays), 2),
            "freshness_s_p95": round(statistics.quantiles(delays, n=20)[-1], 2) if len(delays) >= 2 else None,
            "checkpoint_interval": config.flink.checkpoint_interval,
            "speed_window_seconds": config.speed.window_seconds,
        }
    finally:
        cancel(config, target.job_name)
        admin.delete_topics([topic])[topic].result(30)
        catalog = load_catalog(config)
        for table in tables:
            if catalog.table_exists(table):
                catalog.purge_table(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", choices=("ingest", "speed"), required=True)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--freshness-samples", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(main(args.job, args.events, args.freshness_samples, args.parallelism), indent=2))
