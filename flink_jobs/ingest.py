"""The ingest job: Kafka topic `events` -> Iceberg `raw.events` (accepted) + `raw.events_rejected`.

Every record is validated by `lambdalake.events.validate`, the one definition of a valid
event. Accepted events are stamped with their ingest time (the Kafka record timestamp) and
source position (partition, offset); rejected records keep their payload, size and reason.
A bad record is a row in `raw.events_rejected`, never an exception: the job does not stop.

Exactly-once: Kafka offsets are part of each checkpoint, and the Iceberg sink commits on
checkpoints, so a restart from a checkpoint or savepoint neither loses nor repeats a record.

Submit with `lambdalake ingest start` (or `flink run -py flink_jobs/ingest.py [options]`).
"""

from __future__ import annotations

import argparse

from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import udtf

from lambdalake.catalog import flink_catalog_ddl
from lambdalake.config import load_config
from lambdalake.events import Accepted, kept_payload, validate

CHECKED_COLUMNS = [
    ("reason_code", DataTypes.STRING()),
    ("reason", DataTypes.STRING()),
    ("payload_text", DataTypes.STRING()),
    ("payload_bytes", DataTypes.INT()),
    ("event_id", DataTypes.STRING()),
    ("user_id", DataTypes.STRING()),
    ("session_id", DataTypes.STRING()),
    ("event_type", DataTypes.STRING()),
    ("page", DataTypes.STRING()),
    ("product_id", DataTypes.STRING()),
    ("amount", DataTypes.STRING()),
    ("event_time_ms", DataTypes.BIGINT()),
    ("properties", DataTypes.MAP(DataTypes.STRING(), DataTypes.STRING())),
]


@udtf(result_types=[kind for _, kind in CHECKED_COLUMNS])
def check_event(payload: bytes | None, ingest_time):  # type: ignore[no-untyped-def]
    """One output row per record: the event's fields, or the reason it was rejected."""
    # PyFlink hands TIMESTAMP_LTZ over as a naive local datetime; .timestamp() undoes that
    result = validate(payload, int(ingest_time.timestamp() * 1000))
    if isinstance(result, Accepted):
        yield (None, None, None, None, result.event_id, result.user_id, result.session_id, result.event_type,
               result.page, result.product_id, result.amount, result.event_time_ms, result.properties)
    else:
        yield (result.reason_code, result.reason, kept_payload(payload), len(payload or b""),
               None, None, None, None, None, None, None, None, None)


def quoted(table: str) -> str:
    """namespace.table as quoted Flink identifiers (`raw` alone is a keyword in Flink SQL)."""
    return ".".join(f"`{part}`" for part in table.split("."))


def run(topic: str, group_id: str, events_table: str, rejected_table: str, job_name: str) -> None:
    config = load_config()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.name", job_name)
    env.create_temporary_function("check_event", check_event)

    # the source: the Kafka log, value as raw bytes, with where and when each record arrived
    env.execute_sql(f"""
        CREATE TEMPORARY TABLE events_log (
            payload BYTES,
            kafka_partition INT METADATA FROM 'partition' VIRTUAL,
            kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
            ingest_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
        ) WITH (
            'connector' = 'kafka',
            'topic' = '{topic}',
            'properties.bootstrap.servers' = '{config.host}:{config.kafka.port}',
            'properties.group.id' = '{group_id}',
            'properties.isolation.level' = 'read_committed',
            'scan.startup.mode' = 'group-offsets',
            'properties.auto.offset.reset' = 'earliest',
            'format' = 'raw'
        )""")

    # the sinks: the shared Iceberg catalog (tables made by `lambdalake ingest start`)
    env.execute_sql(flink_catalog_ddl(config))
    catalog = config.iceberg.catalog_name

    env.execute_sql("""
        CREATE TEMPORARY VIEW checked AS
        SELECT c.*, l.ingest_time, l.kafka_partition, l.kafka_offset
        FROM events_log AS l, LATERAL TABLE(check_event(l.payload, l.ingest_time)) AS c(
            reason_code, reason, payload_text, payload_bytes, event_id, user_id, session_id,
            event_type, page, product_id, amount, event_time_ms, properties)""")

    statements = env.create_statement_set()
    statements.add_insert_sql(f"""
        INSERT INTO `{catalog}`.{quoted(events_table)}
        SELECT event_id, user_id, session_id, event_type, page, product_id,
               CAST(amount AS DECIMAL(12, 2)), TO_TIMESTAMP_LTZ(event_time_ms, 3), properties,
               ingest_time, kafka_partition, kafka_offset
        FROM checked WHERE reason_code IS NULL""")
    statements.add_insert_sql(f"""
        INSERT INTO `{catalog}`.{quoted(rejected_table)}
        SELECT reason_code, reason, payload_text, payload_bytes, ingest_time, kafka_partition, kafka_offset
        FROM checked WHERE reason_code IS NOT NULL""")

    # submit: runs until stopped (`lambdalake ingest stop` takes a savepoint first)
    statements.execute()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--events-table", required=True, help="namespace.table, e.g. raw.events")
    parser.add_argument("--rejected-table", required=True, help="namespace.table, e.g. raw.events_rejected")
    parser.add_argument("--job-name", required=True)
    args = parser.parse_args()
    run(args.topic, args.group_id, args.events_table, args.rejected_table, args.job_name)
