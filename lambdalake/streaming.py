"""What every PyFlink job on the log shares: the Kafka source, and validation as a table function.

The ingest job and the speed job read the log the same way and judge each record with the same
`lambdalake.events.validate`, so the speed layer counts exactly the events the master dataset
accepts. Needs pyflink: import it only from jobs (flink_jobs/), which run in the Flink venv.
"""

from __future__ import annotations

import re

from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import udtf

from lambdalake.config import Config
from lambdalake.events import (IMPORT_FILE_HEADER, IMPORT_ROW_HEADER, IMPORT_SHA256_HEADER, Accepted, jvm_rules,
                               kept_payload, validate)
from lambdalake.heartbeat import HEARTBEAT_HEADER

#: our Java functions (flink_jobs/functions, built by `lambdalake setup` into Flink's lib/): the
#: speed layer's dedup, a process table function, and the ingest rules' fast path
FIRST_COPIES_CLASS = "dev.lambdalake.flink.FirstCopies"
ACCEPTED_EVENT_CLASS = "dev.lambdalake.flink.AcceptedEvent"

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
def check_event(payload: bytes | None, ingest_time, imported: bool):  # type: ignore[no-untyped-def]
    """One output row per record: the event's fields, or the reason it was rejected."""
    # PyFlink hands TIMESTAMP_LTZ over as a naive local datetime; .timestamp() undoes that
    ingest_ms = int(ingest_time.timestamp() * 1000)
    result = validate(payload, ingest_ms, imported=bool(imported))
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
                         start_at_ms: int | None = None, *, start_offsets: str | None = None) -> None:
    """Register `events_log` (the Kafka topic: raw bytes, partition, offset, timestamp, proc_time),
    `checked` (each record validated: its fields, or its reason; an imported record's file and row)
    and `heartbeats` (the platform's heartbeat records, which are neither).

    A record is checked by the JVM's fast path (AcceptedEvent, flink_jobs/functions) when it is of
    a plain shape the fast path is sure `validate` accepts, and by `validate` (the Python UDTF
    check_event) otherwise: the same verdict either way, and Python only for the odd record.

    `ingest_time` (the broker's LogAppendTime) is the log's event-time attribute, with a watermark
    per partition: the broker stamps each partition's records in order, so a partition never goes
    back in time, and heartbeats move an idle partition's watermark on. New partitions are found
    every `[kafka] partition_discovery` and read from their start; the watermark trails by two
    discovery intervals, so a new partition's first records are read before it passes them.

    Without state to restore, the job starts at the group's committed offsets (the earliest for a
    new group); or, when given, at start_offsets ('partition:0,offset:42;partition:1,offset:7'), or
    at the first record stamped at or after start_at_ms.
    """
    if start_offsets is not None:
        if not re.fullmatch(r"partition:\d+,offset:\d+(;partition:\d+,offset:\d+)*", start_offsets):
            raise ValueError(f"start offsets {start_offsets!r} are not 'partition:N,offset:M;…'")
        startup = f"'scan.startup.mode' = 'specific-offsets', 'scan.startup.specific-offsets' = '{start_offsets}'"
    elif start_at_ms is not None:
        startup = f"'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '{int(start_at_ms)}'"
    else:
        startup = "'scan.startup.mode' = 'group-offsets'"
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
    # the JVM's fast path first: the plain records it is sure the rules accept never reach Python
    env.create_java_temporary_function("accepted_event", ACCEPTED_EVENT_CLASS)
    rules = jvm_rules().replace("'", "''")
    # a record imported from a history file (lambdalake.imports) is exempt from the lateness rule
    env.execute_sql(f"""
        CREATE TEMPORARY VIEW logged AS
        SELECT payload, ingest_time, kafka_partition, kafka_offset, proc_time,
               headers['{IMPORT_SHA256_HEADER}'] IS NOT NULL AS imported,
               CAST(headers['{IMPORT_FILE_HEADER}'] AS STRING) AS import_file,
               CAST(CAST(headers['{IMPORT_ROW_HEADER}'] AS STRING) AS BIGINT) AS import_row
        FROM events_log WHERE headers['{HEARTBEAT_HEADER}'] IS NULL""")
    # a view from a Table, not CREATE VIEW: each use of a SQL view is planned anew, with a LATERAL
    # correlation of its own, so the planner could not share them and ran the fast path once per
    # branch (three times per record in the ingest job); a Table's plan is one node, used by all
    env.create_temporary_view("fast_checked", env.sql_query(f"""
        SELECT l.payload, l.ingest_time, l.kafka_partition, l.kafka_offset, l.proc_time, l.imported, l.import_file,
               l.import_row, a.*
        FROM logged AS l
        LEFT JOIN LATERAL TABLE(accepted_event(l.payload, l.ingest_time, '{rules}', l.imported)) AS a(
            event_id, user_id, session_id, event_type, page, product_id, amount, event_time_ms, properties,
            ingest_ms) ON TRUE"""))
    # every other record (bad, or of a shape the fast path leaves alone) through the Python rules
    env.create_temporary_function("check_event", check_event)
    env.execute_sql("""
        CREATE TEMPORARY VIEW checked AS
        SELECT CAST(NULL AS STRING) AS reason_code, CAST(NULL AS STRING) AS reason,
               CAST(NULL AS STRING) AS payload_text, CAST(NULL AS INT) AS payload_bytes,
               event_id, user_id, session_id, event_type, page, product_id, amount, event_time_ms, properties,
               ingest_ms, ingest_time, kafka_partition, kafka_offset, proc_time, import_file, import_row
        FROM fast_checked WHERE event_id IS NOT NULL
        UNION ALL
        SELECT c.*, l.ingest_time, l.kafka_partition, l.kafka_offset, l.proc_time, l.import_file, l.import_row
        FROM (SELECT * FROM fast_checked WHERE event_id IS NULL) AS l,
             LATERAL TABLE(check_event(l.payload, l.ingest_time, l.imported)) AS c(
            reason_code, reason, payload_text, payload_bytes, event_id, user_id, session_id,
            event_type, page, product_id, amount, event_time_ms, properties, ingest_ms)""")


def register_counted_copies(env: TableEnvironment, horizon_seconds: int) -> None:
    """Register `counted_copies`: the accepted events that count, by the platform's one dedup rule.

    A copy of an event counts if and only if no earlier copy with the same event_id, in
    (ingest_time, kafka_partition, kafka_offset) order, was ingested at most horizon_seconds before
    it (lambdalake.derive.batch_select_sql applies the same rule to the master dataset).

    The Java function FirstCopies (flink_jobs/functions, in Flink's lib/) judges each event_id's
    copies once the watermark (the slowest partition) has passed them, so it sees every copy of
    the horizon before, from any partition, whatever order the job reads them in. It keeps one
    number per event_id of the last horizon, not its rows. Rows leave in ingest-time order,
    append-only, with ingest_time still the event-time attribute.
    """
    env.execute_sql(f"CREATE TEMPORARY FUNCTION first_copies AS '{FIRST_COPIES_CLASS}' LANGUAGE JAVA")
    env.execute_sql("""
        CREATE TEMPORARY VIEW accepted AS
        SELECT event_id, user_id, session_id, event_type, page, product_id,
               CAST(amount AS DECIMAL(12, 2)) AS amount, event_time_ms, ingest_ms, ingest_time,
               kafka_partition, kafka_offset
        FROM checked WHERE reason_code IS NULL""")
    # a view from a Table, not CREATE VIEW: Flink 2.1 cannot parse its own unparsed text of a PTF
    # call with named arguments
    env.create_temporary_view("counted_copies", env.sql_query(f"""
        SELECT event_id, user_id, session_id, event_type, page, product_id, amount, event_time_ms, ingest_ms,
               rowtime AS ingest_time
        FROM first_copies(copies => TABLE accepted PARTITION BY event_id,
                          horizon_ms => CAST({int(horizon_seconds) * 1000} AS BIGINT),
                          on_time => DESCRIPTOR(ingest_time), uid => 'first-copies')"""))
