"""What every PyFlink job on the log shares: the Kafka source, and validation as a table function.

The ingest job and the speed job read the log the same way and judge each record with the same
`lambdalake.events.validate`, so the speed layer counts exactly the events the master dataset
accepts. Needs pyflink: import it only from jobs (flink_jobs/), which run in the Flink venv.
"""

from __future__ import annotations

from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import udtf

from lambdalake.config import Config
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
    ("ingest_ms", DataTypes.BIGINT()),
]


@udtf(result_types=[kind for _, kind in CHECKED_COLUMNS])
def check_event(payload: bytes | None, ingest_time):  # type: ignore[no-untyped-def]
    """One output row per record: the event's fields, or the reason it was rejected."""
    # PyFlink hands TIMESTAMP_LTZ over as a naive local datetime; .timestamp() undoes that
    ingest_ms = int(ingest_time.timestamp() * 1000)
    result = validate(payload, ingest_ms)
    if isinstance(result, Accepted):
        yield (None, None, None, None, result.event_id, result.user_id, result.session_id, result.event_type,
               result.page, result.product_id, result.amount, result.event_time_ms, result.properties, ingest_ms)
    else:
        yield (result.reason_code, result.reason, kept_payload(payload), len(payload or b""),
               None, None, None, None, None, None, None, None, None, ingest_ms)


def quoted(table: str) -> str:
    """namespace.table as quoted Flink identifiers (`raw` alone is a keyword in Flink SQL)."""
    return ".".join(f"`{part}`" for part in table.split("."))


def register_checked_log(env: TableEnvironment, config: Config, topic: str, group_id: str,
                         start_at_ms: int | None = None) -> None:
    """Register `events_log` (the Kafka topic: raw bytes, partition, offset, timestamp, proc_time)
    and `checked` (each record validated: its fields, or its reason).

    Without state to restore, the job starts at the group's committed offsets (the earliest for a
    new group), or at the first record stamped at or after start_at_ms when given.
    """
    env.create_temporary_function("check_event", check_event)
    startup = ("'scan.startup.mode' = 'group-offsets'" if start_at_ms is None else
               f"'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '{int(start_at_ms)}'")
    env.execute_sql(f"""
        CREATE TEMPORARY TABLE events_log (
            payload BYTES,
            kafka_partition INT METADATA FROM 'partition' VIRTUAL,
            kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
            ingest_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
            proc_time AS PROCTIME()
        ) WITH (
            'connector' = 'kafka',
            'topic' = '{topic}',
            'properties.bootstrap.servers' = '{config.host}:{config.kafka.port}',
            'properties.group.id' = '{group_id}',
            'properties.isolation.level' = 'read_committed',
            {startup},
            'properties.auto.offset.reset' = 'earliest',
            'format' = 'raw'
        )""")
    env.execute_sql("""
        CREATE TEMPORARY VIEW checked AS
        SELECT c.*, l.ingest_time, l.kafka_partition, l.kafka_offset, l.proc_time
        FROM events_log AS l, LATERAL TABLE(check_event(l.payload, l.ingest_time)) AS c(
            reason_code, reason, payload_text, payload_bytes, event_id, user_id, session_id,
            event_type, page, product_id, amount, event_time_ms, properties, ingest_ms)""")


def register_first_arrivals(env: TableEnvironment, dedup_ttl: str) -> None:
    """Register `first_arrivals`: accepted events from `checked`, each event_id once (the first to
    arrive), remembered for dedup_ttl (a Flink duration such as '1 h')."""
    # how long an event_id is remembered: a duplicate arriving later than this counts again
    env.get_config().set("table.exec.state.ttl", dedup_ttl)
    env.execute_sql("""
        CREATE TEMPORARY VIEW first_arrivals AS
        SELECT event_id, user_id, session_id, event_type, page, product_id,
               CAST(amount AS DECIMAL(12, 2)) AS amount, event_time_ms, ingest_ms, proc_time
        FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS arrival
            FROM checked WHERE reason_code IS NULL
        ) WHERE arrival = 1""")
