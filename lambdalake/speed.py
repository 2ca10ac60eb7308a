"""The speed job (flink_jobs/speed.py): every view's real-time part, into `speed.<view>` tables.

`start` creates each view's speed table (its schema derived from the view definition) before
submitting; `lambdalake.jobs.stop` stops it with a savepoint to resume from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdalake import jobs
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.derive import speed_fields, speed_partition_by
from lambdalake.errors import ConfigError
from lambdalake.tables import build_schema, create_if_missing
from lambdalake.views import View, lambda_views

SPEED_JOB = PROJECT_ROOT / "flink_jobs" / "speed.py"


@dataclass(frozen=True)
class SpeedTarget:
    """Where one speed job reads and writes. The default is the platform's own."""

    topic: str
    group_id: str
    job_name: str
    #: appended to each speed.<view> table (tests and benchmarks use their own tables)
    table_suffix: str = ""

    @classmethod
    def default(cls, config: Config) -> SpeedTarget:
        return cls(config.kafka.events_topic, config.speed.group_id, config.speed.job_name)

    def __post_init__(self) -> None:
        jobs.check_name(self.topic, "topic")
        jobs.check_name(self.group_id, "consumer group")
        jobs.check_name(self.job_name, "job name")
        if not re.fullmatch(r"[a-z0-9_]*", self.table_suffix):
            raise ConfigError(f"table suffix {self.table_suffix!r} may only hold a-z, 0-9 and '_'")

    def table(self, view: View) -> str:
        return view.speed_table + self.table_suffix


def ensure_speed_tables(config: Config, suffix: str = "") -> list[str]:
    """Create speed.<view><suffix> for every lambda view that has none; return their names."""
    made = []
    for view in lambda_views():
        schema, spec = build_schema(speed_fields(view), speed_partition_by())
        table = view.speed_table + suffix
        create_if_missing(config, table, schema, spec,
                          f"Real-time part of view {view.name} v{view.version}, appended by the speed job.")
        made.append(table)
    return made


def start(config: Config, target: SpeedTarget, *, parallelism: int | None = None,
          savepoint: str | None = None, checkpoint_interval: str | None = None) -> str:
    """Create the speed tables if needed and submit the job unless it is live; return its job id.

    checkpoint_interval (a Flink duration) overrides the cluster's for this job (benchmarks).
    """
    ensure_speed_tables(config, target.table_suffix)
    speed = config.speed
    args = ["--topic", target.topic, "--group-id", target.group_id, "--table-suffix", target.table_suffix,
            "--window-seconds", str(speed.window_seconds), "--dedup-ttl", speed.dedup_ttl]
    if checkpoint_interval:
        args += ["--checkpoint-interval", checkpoint_interval]
    return jobs.submit(config, SPEED_JOB, args, target.job_name,
                       parallelism=parallelism or speed.parallelism, savepoint=savepoint)
