"""A kappa view's stream job: one version of one view, replayed from the log into its own table.

Reads the topic from the earliest offset (its consumer group is new), validates each record as
the ingest job does, deduplicates by event_id (first arrival wins), and appends the view's rows
to `speed.<view>__v<N>` every --window-seconds. The view's definition comes as JSON (pinned in
the table's properties by `lambdalake.kappa`), so a version always runs its own logic.

Submitted by the `kappa_reprocess` DAG or `lambdalake kappa reprocess`.
"""

from __future__ import annotations

import argparse
import json

from pyflink.table import EnvironmentSettings, TableEnvironment

from lambdalake.catalog import flink_catalog_ddl
from lambdalake.config import load_config
from lambdalake.derive import speed_insert_sql
from lambdalake.streaming import register_checked_log, register_first_arrivals
from lambdalake.views import parse_view


def run(topic: str, group_id: str, job_name: str, table: str, definition: str, window_seconds: int,
        dedup_ttl: str) -> None:
    config = load_config()
    view = parse_view(json.loads(definition), f"--view-definition of {job_name}")
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.name", job_name)

    register_checked_log(env, config, topic, group_id)
    register_first_arrivals(env, dedup_ttl)

    env.execute_sql(flink_catalog_ddl(config))
    env.execute_sql(speed_insert_sql(view, config.iceberg.catalog_name, table, window_seconds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--job-name", required=True)
    parser.add_argument("--table", required=True, help="speed.<view>__v<N>")
    parser.add_argument("--view-definition", required=True, help="the view's definition as JSON")
    parser.add_argument("--window-seconds", type=int, required=True)
    parser.add_argument("--dedup-ttl", required=True, help="e.g. '1 h'")
    args = parser.parse_args()
    run(args.topic, args.group_id, args.job_name, args.table, args.view_definition, args.window_seconds,
        args.dedup_ttl)
