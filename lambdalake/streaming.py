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
from lambdalake.heartbeat import HEARTBEAT_HEADER

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


def apply_settings(env: TableEnvironment, settings: list[str]) -> None:
    """Set each `KEY=VALUE` (a job's --setting) in the job's Flink configuration.

    Job-level keys only, e.g. `execution.checkpointing.interval=2 s` or a
    `state.backend.rocksdb.*` option (the state backend reads the job's configuration); the
    cluster's own (memory sizes, ports) are in lambdalake.engines.flink.flink_settings.
    """
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--setting {setting!r} is not KEY=VALUE; e.g. --setting 'execution.checkpointing.interval=2 s'")
        env.get_config().set(key.strip(), value.strip())


def quoted(table: str) -> str:
    """namespace.table as quoted Flink identifiers (`raw` alone is a keyword in Flink SQL)."""
    return ".".join(f"`{part}`" for part in table.split("."))


def register_checked_log(env: TableEnvironment, config: Config, topic: str, group_id: str,
                         start_at_ms: int | None = None) -> None:
    """Register `events_log` (the Kafka topic: raw bytes, partition, offset, timestamp, proc_time),
    `checked` (each record validated: its fields, or its reason) and `heartbeats` (the platform's
    heartbeat records, which are neither).

    `ingest_time` (the broker's LogAppendTime) is the log's event-time attribute, with a watermark
    per partition: the broker stamps each partition's records in order, so a partition never goes
    back in time, and heartbeats move an idle partition's watermark on. New partitions are found
    every `[kafka] partition_discovery` and read from their start; the watermark trails by two
    discovery intervals, so a new partition's first records are read before it passes them.

    Without state to restore, the job starts at the group's committed offsets (the earliest for a
    new group), or at the first record stamped at or after start_at_ms when given.
    """
    env.create_temporary_function("check_event", check_event)
    startup = ("'scan.startup.mode' = 'group-offsets'" if start_at_ms is None else
               f"'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '{int(start_at_ms)}'")
    env.execute_sql(f"""
        CREATE TEMPORARY TABLE events_log (
            payload BYTES,
            headers MAP<STRING, BYTES> METADATA FROM 'headers' VIRTUAL,
            kafka_partition INT METADATA FROM 'partition' VIRTUAL,
            kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
            ingest_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
            proc_time AS PROCTIME(),
            WATERMARK FOR ingest_time AS ingest_time - INTERVAL '{config.kafka.watermark_delay_seconds:.3f}' SECOND
        ) WITH (
            'connector' = 'kafka',
            'topic' = '{topic}',
            'properties.bootstrap.servers' = '{config.kafka_bootstrap}',
            'properties.group.id' = '{group_id}',
            'properties.isolation.level' = 'read_committed',
            {startup},
            'properties.auto.offset.reset' = 'earliest',
            'scan.topic-partition-discovery.interval' = '{config.kafka.partition_discovery}',
            'format' = 'raw'
        )""")
    env.execute_sql(f"""
        CREATE TEMPORARY VIEW heartbeats AS
        SELECT kafka_partition, kafka_offset, ingest_time FROM events_log
        WHERE headers['{HEARTBEAT_HEADER}'] IS NOT NULL""")
    env.execute_sql(f"""
        CREATE TEMPORARY VIEW checked AS
        SELECT c.*, l.ingest_time, l.kafka_partition, l.kafka_offset, l.proc_time
        FROM (SELECT * FROM events_log WHERE headers['{HEARTBEAT_HEADER}'] IS NULL) AS l,
             LATERAL TABLE(check_event(l.payload, l.ingest_time)) AS c(
            reason_code, reason, payload_text, payload_bytes, event_id, user_id, session_id,
            event_type, page, product_id, amount, event_time_ms, properties, ingest_ms)""")


def _day_to_second(seconds: int) -> str:
    """A Flink interval literal (Flink refuses SECOND with more than two digits)."""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    return f"INTERVAL '{days} {hour:02d}:{minute:02d}:{second:02d}' DAY TO SECOND"


def register_counted_copies(env: TableEnvironment, horizon_seconds: int) -> None:
    """Register `counted_copies`: the accepted events that count, by the platform's one dedup rule.

    A copy of an event counts if and only if no earlier copy with the same event_id, in
    (ingest_time, kafka_partition, kafka_offset) order, was ingested at most horizon_seconds before
    it (lambdalake.derive.batch_select_sql applies the same rule to the master dataset).

    An event-time OVER window on ingest_time sees, for each copy, every copy of the horizon before
    it, including those in other partitions, whatever order the job reads them in: it buffers each
    row until the watermark (the slowest partition) has passed it. Rows leave in ingest-time order,
    append-only, with ingest_time still the event-time attribute.
    """
    env.execute_sql(f"""
        CREATE TEMPORARY VIEW counted_copies AS
        WITH accepted AS (
            SELECT event_id, user_id, session_id, event_type, page, product_id,
                   CAST(amount AS DECIMAL(12, 2)) AS amount, event_time_ms, ingest_ms, ingest_time,
                   -- a copy's place in the log as one number: ingest time, then partition, then
                   -- offset (below 10^13). One MIN over it, not one per part: each MIN keeps a
                   -- map in state, read and written for every row
                   CAST(ingest_ms AS DECIMAL(38, 0)) * CAST('100000000000000000000' AS DECIMAL(38, 0))
                       + CAST(kafka_partition AS DECIMAL(38, 0)) * CAST('10000000000000' AS DECIMAL(38, 0))
                       + CAST(kafka_offset AS DECIMAL(38, 0)) AS log_order
            FROM checked WHERE reason_code IS NULL
        ),
        judged AS (
            SELECT *, MIN(log_order) OVER recent_copies AS first_recent
            FROM accepted
            WINDOW recent_copies AS (
                PARTITION BY event_id ORDER BY ingest_time
                RANGE BETWEEN {_day_to_second(horizon_seconds)} PRECEDING AND CURRENT ROW)
        )
        SELECT event_id, user_id, session_id, event_type, page, product_id, amount, event_time_ms, ingest_ms,
               ingest_time
        FROM judged
        -- no copy earlier in the horizon: none before this instant, and none at it earlier in the log
        WHERE first_recent = log_order""")
