"""The ingest job: Kafka topic `events` -> Iceberg `raw.events` (accepted) + `raw.events_rejected`.

Every record but the platform's heartbeats (lambdalake.heartbeat) is validated by `lambdalake.events.validate`, the one definition of a valid
event. Accepted events are stamped with their ingest time (the Kafka record timestamp) and
source position (partition, offset); rejected records keep their payload, size and reason. A
record imported from a history file (lambdalake.imports) keeps its file and row, either way.
A bad record is a row in `raw.events_rejected`, never an exception: the job does not stop.

Exactly-once: Kafka offsets are part of each checkpoint, and the Iceberg sink commits on
checkpoints, so a restart from a checkpoint or savepoint neither loses nor repeats a record.

Submit with `lambdalake ingest start` (or `flink run -py flink_jobs/ingest.py [options]`).
"""

from __future__ import annotations

import argparse

from pyflink.table import EnvironmentSettings, TableEnvironment

from lambdalake.catalog import flink_catalog_ddl
from lambdalake.config import load_config
from lambdalake.streaming import apply_settings, quoted, register_checked_log


def run(topic: str, group_id: str, events_table: str, rejected_table: str, heartbeats_table: str,
        job_name: str, settings: list[str], start_offsets: str | None) -> None:
    config = load_config()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.name", job_name)
    apply_settings(env, settings)

    # the source: the Kafka log, each record validated (its fields, or why it was rejected)
    register_checked_log(env, config, topic, group_id, start_offsets=start_offsets)

    # the sinks: the shared Iceberg catalog (tables made by `lambdalake ingest start`)
    env.execute_sql(flink_catalog_ddl(config))
    catalog = config.iceberg.catalog_name

    statements = env.create_statement_set()
    statements.add_insert_sql(f"""
        INSERT INTO `{catalog}`.{quoted(events_table)}
        SELECT event_id, user_id, session_id, event_type, page, product_id,
               CAST(amount AS DECIMAL(12, 2)), TO_TIMESTAMP_LTZ(event_time_ms, 3), properties,
               ingest_time, kafka_partition, kafka_offset, import_file, import_row
        FROM checked WHERE reason_code IS NULL""")
    statements.add_insert_sql(f"""
        INSERT INTO `{catalog}`.{quoted(rejected_table)}
        SELECT reason_code, reason, payload_text, payload_bytes, ingest_time, kafka_partition, kafka_offset,
               import_file, import_row
        FROM checked WHERE reason_code IS NOT NULL""")
    # heartbeats are no events: only their positions are kept, so the batch layer knows how far
    # a partition whose tail is heartbeats is complete
    statements.add_insert_sql(f"""
        INSERT INTO `{catalog}`.{quoted(heartbeats_table)}
        SELECT ingest_time, kafka_partition, kafka_offset FROM heartbeats""")

    # submit: runs until stopped (`lambdalake ingest stop` takes a savepoint first)
    statements.execute()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--events-table", required=True, help="namespace.table, e.g. raw.events")
    parser.add_argument("--rejected-table", required=True, help="namespace.table, e.g. raw.events_rejected")
    parser.add_argument("--heartbeats-table", required=True, help="namespace.table, e.g. raw.events_heartbeats")
    parser.add_argument("--job-name", required=True)
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink setting for this job over the cluster's, e.g. 'pipeline.object-reuse=true'")
    parser.add_argument("--start-offsets", help="without state, start here, e.g. 'partition:0,offset:42;"
                                               "partition:1,offset:7' (lambdalake.ingest.stored_until); "
                                               "default: the group's committed offsets")
    args = parser.parse_args()
    run(args.topic, args.group_id, args.events_table, args.rejected_table, args.heartbeats_table, args.job_name,
        args.setting, args.start_offsets)
