"""A speed job: views' real-time parts, from the Kafka log into their speed tables (Iceberg).

Records are validated exactly as the ingest job does (shared code), judged by the platform's one
dedup rule (a copy counts unless an earlier copy reached Kafka at most --dedup-horizon-seconds
before it; lambdalake.streaming), and aggregated per view every --window-seconds of ingest time
into rows keyed by (ingest bucket, event-time bucket, dimensions). Rows are only ever appended; the serving layer adds them up. Each view's SQL is
derived from its definition by lambdalake.derive; --views gives each table and the definition
pinned in it, so a job always runs the logic its tables were started with.

The same file runs the shared speed job (`lambdalake speed start`: every lambda view, named
`lambdalake-speed`) and a reprocessed version of one view (`lambdalake kappa reprocess`:
`lambdalake-kappa-<view>-v<N>`, from the earliest offset, its consumer group being new).
"""

from __future__ import annotations

import argparse
import json

from pyflink.table import EnvironmentSettings, TableEnvironment

from lambdalake.catalog import flink_catalog_ddl
from lambdalake.config import load_config
from lambdalake.derive import speed_insert_sql
from lambdalake.streaming import apply_settings, register_checked_log, register_counted_copies
from lambdalake.views import parse_view


def run(topic: str, group_id: str, job_name: str, views: str, window_seconds: int, horizon_seconds: int,
        settings: list[str], replay_from_ms: int | None, emit_from_ms: int) -> None:
    config = load_config()
    targets = [(item["table"], parse_view(item["definition"], f"--views of {job_name}")) for item in json.loads(views)]
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.name", job_name)
    apply_settings(env, settings)

    # the source: the Kafka log, validated as the ingest job does
    register_checked_log(env, config, topic, group_id, replay_from_ms)
    # the copies that count: none earlier within the horizon, in ingest-time order
    register_counted_copies(env, horizon_seconds)
    # a restart re-reads the log from a horizon before --emit-from-ms, to judge the copies after it;
    # only those are new to the speed tables
    env.execute_sql(f"CREATE TEMPORARY VIEW new_copies AS SELECT * FROM counted_copies "
                    f"WHERE ingest_ms >= {int(emit_from_ms)}")

    # the sinks: one speed table per view, in the shared catalog
    env.execute_sql(flink_catalog_ddl(config))
    statements = env.create_statement_set()
    for table, view in targets:
        statements.add_insert_sql(speed_insert_sql(view, config.iceberg.catalog_name, table, window_seconds,
                                                       source="new_copies"))

    # submit: runs until stopped (`lambdalake speed stop` takes a savepoint first)
    statements.execute()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--job-name", required=True)
    parser.add_argument("--views", required=True, help='JSON: [{"table": "speed.<view>", "definition": {...}}]')
    parser.add_argument("--window-seconds", type=int, required=True)
    parser.add_argument("--dedup-horizon-seconds", type=int, required=True)
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink setting for this job over the cluster's, e.g. 'execution.checkpointing.interval=2 s'")
    parser.add_argument("--replay-from-ms", type=int, help="without state: start at this Kafka timestamp")
    parser.add_argument("--emit-from-ms", type=int, default=0, help="count only events ingested from then on")
    args = parser.parse_args()
    run(args.topic, args.group_id, args.job_name, args.views, args.window_seconds, args.dedup_horizon_seconds,
        args.setting, args.replay_from_ms, args.emit_from_ms)
