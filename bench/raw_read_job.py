"""The engine's own ceiling, for bench.streaming: a Flink job that reads a topic with the `raw`
format, from its earliest to its latest offset, into a blackhole, and finishes.

No validation, no state, no sink work: what is left is Flink's Kafka source, the same source the
platform's jobs start from (`flink run -py bench/raw_read_job.py --topic T --bootstrap B --job-name N`).
"""

from __future__ import annotations

import argparse

from pyflink.table import EnvironmentSettings, TableEnvironment


def run(topic: str, bootstrap: str, job_name: str) -> None:
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.name", job_name)
    env.execute_sql(f"""
        CREATE TEMPORARY TABLE log (payload BYTES) WITH (
            'connector' = 'kafka',
            'topic' = '{topic}',
            'properties.bootstrap.servers' = '{bootstrap}',
            'properties.group.id' = '{job_name}',
            'properties.isolation.level' = 'read_committed',
            'scan.startup.mode' = 'earliest-offset',
            'scan.bounded.mode' = 'latest-offset',
            'format' = 'raw'
        )""")
    env.execute_sql("CREATE TEMPORARY TABLE sink (payload BYTES) WITH ('connector' = 'blackhole')")
    env.execute_sql("INSERT INTO sink SELECT payload FROM log")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--job-name", required=True)
    args = parser.parse_args()
    run(args.topic, args.bootstrap, args.job_name)
