"""The ingest job (flink_jobs/ingest.py): Kafka `events` -> `raw.events` + `raw.events_rejected`.

`start` creates the raw tables (and `raw.events_heartbeats`, the heartbeats' positions) (declared in iceberg/tables.yaml) before submitting, since
Flink only writes them; `lambdalake.jobs.stop` stops it with a savepoint to resume from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdalake import jobs, names
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.tables import ensure_table, heartbeats_table

INGEST_JOB = PROJECT_ROOT / "flink_jobs" / "ingest.py"


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


def start(config: Config, target: IngestTarget, *, parallelism: int | None = None,
          savepoint: str | None = None, settings: Mapping[str, str] | None = None) -> str:
    """Create the raw tables if needed and submit the job unless it is live; return its job id.

    settings: Flink settings for this job over the cluster's (benchmarks)."""
    from lambdalake.state import watch

    ensure_table(config, "raw.events", target.events_table)
    ensure_table(config, "raw.events_rejected", target.rejected_table)
    ensure_table(config, "raw.events_heartbeats", target.heartbeats_table)
    watch(config, target.topic)
    args = ["--topic", target.topic, "--group-id", target.group_id, "--events-table", target.events_table,
            "--rejected-table", target.rejected_table, "--heartbeats-table", target.heartbeats_table,
            *jobs.setting_args(settings or {})]
    return jobs.submit(config, INGEST_JOB, args, target.job_name,
                       parallelism=parallelism or config.ingest.parallelism, savepoint=savepoint)
