"""A bounded Flink job for tests/integration/test_first_copies.py: the speed job's dedup
(lambdalake.streaming.register_counted_copies) over copies listed in a CSV file, read in the file's
order; prints each copy that counts as one JSON line `{"counted": [event_id, page, ingest_ms]}`.

Columns of the file: event_id, page, ingest_ms, kafka_partition, kafka_offset.
"""

from __future__ import annotations

import argparse
import json

from pyflink.table import EnvironmentSettings, TableEnvironment

from lambdalake.streaming import register_counted_copies


def run(path: str, horizon_seconds: int) -> None:
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("parallelism.default", "2")
    # the file as the log would be: ingest time the event-time attribute, a watermark behind it
    # wider than the file's span, so that no copy is late whatever line it is on
    env.execute_sql(f"""
        CREATE TEMPORARY TABLE listed (
            event_id STRING, page STRING, ingest_ms BIGINT, kafka_partition INT, kafka_offset BIGINT,
            ingest_time AS TO_TIMESTAMP_LTZ(ingest_ms, 3),
            WATERMARK FOR ingest_time AS ingest_time - INTERVAL '10' MINUTE
        ) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv')""")
    # the columns the job's validation gives an accepted record
    env.execute_sql("""
        CREATE TEMPORARY VIEW checked AS
        SELECT CAST(NULL AS STRING) AS reason_code, event_id, 'u' AS user_id, 's' AS session_id,
               'page_view' AS event_type, page, CAST(NULL AS STRING) AS product_id, CAST(NULL AS STRING) AS amount,
               ingest_ms AS event_time_ms, ingest_ms, ingest_time, kafka_partition, kafka_offset
        FROM listed""")
    register_counted_copies(env, horizon_seconds)
    with env.execute_sql("SELECT event_id, page, ingest_ms FROM counted_copies").collect() as rows:
        for row in rows:
            print(json.dumps({"counted": list(row)}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True)
    parser.add_argument("--horizon-seconds", type=int, required=True)
    args = parser.parse_args()
    run(args.path, args.horizon_seconds)
