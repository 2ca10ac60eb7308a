"""The speed job: every lambda view's real-time part, from the Kafka log into `speed.<view>` (Iceberg).

Records are validated exactly as the ingest job does (shared code), deduplicated by event_id
(the first arrival wins; keyed state kept for --dedup-ttl), and aggregated per view every
--window-seconds of processing time into rows keyed by (ingest bucket, event-time bucket,
dimensions). Rows are only ever appended; the serving layer adds them up. The SQL of each view
is derived from its definition in views/ by lambdalake.derive.

Submit with `lambdalake speed start` (or `flink run -py flink_jobs/speed.py [options]`).
"""

from __future__ import annotations

import argparse

from pyflink.table import EnvironmentSettings, TableEnvironment

from lambdalake.catalog import flink_catalog_ddl
from lambdalake.config import load_config
from lambdalake.derive import speed_insert_sql
from lambdalake.streaming import register_checked_log, register_first_arrivals
from lambdalake.views import lambda_views


def run(topic: str, group_id: str, job_name: str, table_suffix: str, window_seconds: int, dedup_ttl: str,
        checkpoint_interval: str | None) -> None:
    config = load_config()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.name", job_name)
    if checkpoint_interval:  # rows become visible at checkpoints: this trades freshness for files
        env.get_config().set("execution.checkpointing.interval", checkpoint_interval)

    # the source: the Kafka log, validated as the ingest job does
    register_checked_log(env, config, topic, group_id)
    # accepted events, each event_id once: the first to arrive
    register_first_arrivals(env, dedup_ttl)

    # the sinks: one speed table per view, in the shared catalog
    env.execute_sql(flink_catalog_ddl(config))
    statements = env.create_statement_set()
    for view in lambda_views():
        table = view.speed_table + table_suffix
        statements.add_insert_sql(speed_insert_sql(view, config.iceberg.catalog_name, table, window_seconds))

    # submit: runs until stopped (`lambdalake speed stop` takes a savepoint first)
    statements.execute()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--job-name", required=True)
    parser.add_argument("--table-suffix", default="", help="appended to each speed.<view> table name")
    parser.add_argument("--window-seconds", type=int, required=True)
    parser.add_argument("--dedup-ttl", required=True, help="e.g. '1 h'")
    parser.add_argument("--checkpoint-interval", help="e.g. '2 s'; default: the cluster's")
    args = parser.parse_args()
    run(args.topic, args.group_id, args.job_name, args.table_suffix, args.window_seconds, args.dedup_ttl,
        args.checkpoint_interval)
