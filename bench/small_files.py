"""Small files: data files per partition in the master dataset and the speed tables after streaming,
before and after `iceberg_maintenance`.

    .venv/bin/python -m bench.small_files --minutes 60 --rate 200

Runs the ingest and speed jobs on a topic of their own while `--rate` events/s stream in for
`--minutes`, counts data files per partition (Trino's `$partitions`), runs the maintenance the
DAG runs (`lambdalake.maintenance.maintain`: compaction, snapshot expiry, orphan removal) on
those tables while the stream goes on, and counts again. Tables are partitioned by day, so
"per hour-partition" is the day partition's count scaled by the hours streamed. The dashboard
query of bench.streaming (top 20 pages of the last hour, on serving) is timed before and after.
Its topic, tables and jobs are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import save
from bench.schedules import schedules_paused
from bench.streaming import Background, percentile
from lambdalake import ingest, serving, speed
from lambdalake.batch import Layers, ensure_serving
from lambdalake.catalog import load_catalog
from lambdalake.config import Config, load_config
from lambdalake.jobs import cancel, live_jobs
from lambdalake.maintenance import files_per_partition, maintain
from lambdalake.query import run_query
from lambdalake.views import lambda_views


def dashboard_latency(config: Config, serving_table: str, queries: int = 20) -> dict[str, float]:
    sql = (f"select page, sum(page_views) as views from {serving_table} where event_time_bucket >= "
           "current_timestamp - interval '1' hour group by page order by views desc limit 20")
    samples = []
    for _ in range(queries):
        started = time.monotonic()
        run_query(config, sql)
        samples.append(time.monotonic() - started)
    return {"p50_s": round(statistics.median(samples), 3), "p95_s": percentile(samples, 95)}


def main(minutes: float, rate: int) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-files-{suffix}"
    ingest_target = ingest.IngestTarget(topic, f"{topic}-ingest", f"raw.bench_files_events_{suffix}",
                                        f"raw.bench_files_rejected_{suffix}", f"{topic}-ingest")
    speed_target = speed.SpeedTarget(topic, f"{topic}-speed", f"{topic}-speed", f"__f{suffix}")
    tables = [ingest_target.events_table, ingest_target.rejected_table,
              *(speed_target.table(view) for view in lambda_views())]
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=config.kafka.events_partitions,
                                  replication_factor=config.kafka.replication_factor)])[topic].result(30)
    background = Background(config, topic, rate)
    layers = Layers(topic=topic, suffix=speed_target.table_suffix)
    serving_table = f"serving.page_views_per_page{speed_target.table_suffix}"
    try:
        ingest.start(config, ingest_target)
        speed.start(config, speed_target)
        ensure_serving(config, layers)
        background.start()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < minutes * 60:
            print(f"streaming at {rate}/s: {elapsed / 60:.1f} of {minutes} minutes", flush=True)
            time.sleep(min(60, minutes * 60 - elapsed))
        hours = (time.monotonic() - started) / 3600
        before = {table: files_per_partition(config, table) for table in tables}
        latency_before = dashboard_latency(config, serving_table)
        maintenance_started = time.monotonic()
        for table in tables:
            maintain(config, table)
        maintenance_seconds = time.monotonic() - maintenance_started
        after = {table: files_per_partition(config, table) for table in tables}
        latency_after = dashboard_latency(config, serving_table)
        return {
            "minutes_streamed": round(hours * 60, 1),
            "rate_events_per_s": rate,
            "checkpoint_interval": config.flink.checkpoint_interval,
            "files_per_partition_before": before,
            "files_per_partition_after": after,
            "largest_partition_files_per_hour_before": round(max(max(f, default=0) for f in before.values()) / hours),
            "largest_partition_files_after": max(max(f, default=0) for f in after.values()),
            "maintenance_seconds": round(maintenance_seconds, 1),
            "dashboard_latency_before": latency_before,
            "dashboard_latency_after": latency_after,
        }
    finally:
        background.stopping.set()
        for job in (ingest_target.job_name, speed_target.job_name):
            cancel(config, job)
            while live_jobs(config, job):
                time.sleep(1)
        admin.delete_topics([topic])[topic].result(30)
        for view in lambda_views():
            serving.drop(config, layers.serving(view))
        catalog = load_catalog(config)
        for table in tables:
            if catalog.table_exists(table):
                catalog.purge_table(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    with schedules_paused(load_config()):
        result = main(args.minutes, args.rate)
    print(json.dumps(result, indent=2))
    save("small-files", result,
         f"after {result['minutes_streamed']} min at {args.rate} events/s: up to "
         f"{result['largest_partition_files_per_hour_before']} files per partition per hour before maintenance, "
         f"{result['largest_partition_files_after']} per partition after (target <= 2 per hour-partition); "
         f"dashboard query p50 {result['dashboard_latency_before']['p50_s']} s before, "
         f"{result['dashboard_latency_after']['p50_s']} s after")
