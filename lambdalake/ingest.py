"""The ingest job (flink_jobs/ingest.py): Kafka `events` -> `raw.events` + `raw.events_rejected`.

`start` creates the raw tables (and `raw.events_heartbeats`, the heartbeats' positions) (declared in iceberg/tables.yaml) before submitting, since
Flink only writes them; `lambdalake.jobs.stop` stops it with a savepoint to resume from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdalake import jobs, names, offsets
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.names import trino_table
from lambdalake.query import run_query
from lambdalake.tables import ensure_table, heartbeats_table

INGEST_JOB = PROJECT_ROOT / "flink_jobs" / "ingest.py"

#: the ingest job's Flink settings over the cluster's. Object reuse: its chained operators pass
#: each row on instead of copying it, and a third of its CPU was serialization (2M events, medians
#: of 3 back to back, on two days: 1.10x and 1.30x; BENCHMARKS.md). Every ingest test runs with it
JOB_SETTINGS = {"pipeline.object-reuse": "true"}


@dataclass(frozen=True)
class IngestTarget:
    """Where one ingest job reads and writes. The default is the platform's own."""

    topic: str
    group_id: str
    events_table: str
    rejected_table: str
    job_name: str

    @classmethod
    def default(cls, config: Config) -> IngestTarget:
        return cls(config.kafka.events_topic, config.ingest.group_id, "raw.events", "raw.events_rejected",
                   config.ingest.job_name)

    def __post_init__(self) -> None:
        names.topic_name(self.topic)
        names.topic_name(self.group_id, "consumer group")
        names.topic_name(self.job_name, "job name")
        names.table_name(self.events_table)
        names.table_name(self.rejected_table)

    @property
    def heartbeats_table(self) -> str:
        return heartbeats_table(self.events_table)


def stored_until(config: Config, target: IngestTarget) -> dict[int, int] | None:
    """Per partition of the topic, the first offset the three raw tables do not hold; None when they
    hold nothing of it.

    Each checkpoint of the job commits a prefix of every partition to the tables, so this is where a
    job without state resumes with nothing lost and nothing stored twice. A partition of which they
    hold nothing starts at its first offset."""
    tables = (target.events_table, target.rejected_table, target.heartbeats_table)
    _, rows = run_query(config, "select kafka_partition, max(kafka_offset) from ("
                                + " union all ".join(f"select kafka_partition, kafka_offset from {trino_table(t)}"
                                                     for t in tables) + ") group by 1")
    if not rows:
        return None
    stored = {int(partition): int(offset) + 1 for partition, offset in rows}
    return {partition: stored.get(partition, low)
            for partition, (low, _) in offsets.watermarks(config, target.topic).items()}


def start(config: Config, target: IngestTarget, *, parallelism: int | None = None,
          savepoint: str | None = None, settings: Mapping[str, str] | None = None) -> str:
    """Create the raw tables if needed and submit the job unless it is live; return its job id.

    Without a savepoint, the job starts where the tables' rows end (stored_until), else at its
    group's committed offsets (the earliest for a new group). Not the group's offsets when the tables
    hold rows: a job stopped with a savepoint may not have committed its last offsets to Kafka, and
    starting there stored those records twice.
    settings: Flink settings for this job over JOB_SETTINGS and the cluster's (benchmarks)."""
    from lambdalake.state import watch

    ensure_table(config, "raw.events", target.events_table)
    ensure_table(config, "raw.events_rejected", target.rejected_table)
    ensure_table(config, "raw.events_heartbeats", target.heartbeats_table)
    watch(config, target.topic)
    args = ["--topic", target.topic, "--group-id", target.group_id, "--events-table", target.events_table,
            "--rejected-table", target.rejected_table, "--heartbeats-table", target.heartbeats_table,
            *jobs.setting_args({**JOB_SETTINGS, **(settings or {})})]
    if savepoint is None and not jobs.live_job_ids(config).get(target.job_name):
        resume = stored_until(config, target)
        if resume:
            args += ["--start-offsets", ";".join(f"partition:{p},offset:{o}" for p, o in sorted(resume.items()))]
    return jobs.submit(config, INGEST_JOB, args, target.job_name,
                       parallelism=parallelism or config.ingest.parallelism, savepoint=savepoint)
