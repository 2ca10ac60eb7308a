"""The shared speed job (flink_jobs/speed.py): lambda views' real-time parts, into `speed.<view>` tables.

`start` creates each view's speed table (its schema derived from the view definition, the
definition pinned with it in the state store) before submitting; `lambdalake.jobs.stop` stops it with a
savepoint to resume from. A view that has been reprocessed (lambdalake.kappa) runs in a job of
its own instead: `restart` resubmits the shared job without it, exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from lambdalake import jobs, names, offsets, state
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.query import run_delete
from lambdalake.serving import live_version
from lambdalake.versions import base_table, make_speed_table
from lambdalake.views import View, floor_to_bucket, lambda_views

SPEED_JOB = PROJECT_ROOT / "flink_jobs" / "speed.py"


@dataclass(frozen=True)
class SpeedTarget:
    """Where one shared speed job reads and writes. The default is the platform's own."""

    topic: str
    group_id: str
    job_name: str
    #: appended to each speed.<view> table (tests and benchmarks use their own tables)
    table_suffix: str = ""
    #: only these lambda views; empty means every one
    views: tuple[str, ...] = ()
    #: the dedup horizon in seconds; None means `[dedup] horizon` (tests use a short one, with a
    #: batch layer of the same horizon)
    horizon_seconds: int | None = None

    @classmethod
    def default(cls, config: Config) -> SpeedTarget:
        return cls(config.kafka.events_topic, config.speed.group_id, config.speed.job_name)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> SpeedTarget:
        """The target as recorded with the base tables it writes (to_record)."""
        return cls(**{**data, "views": tuple(data.get("views", ()))})

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "views": list(self.views)}

    def __post_init__(self) -> None:
        names.topic_name(self.topic)
        names.topic_name(self.group_id, "consumer group")
        names.topic_name(self.job_name, "job name")
        names.suffix(self.table_suffix, "table suffix")

    def table(self, view: View) -> str:
        return base_table(view.name, self.table_suffix)


def create_base_table(config: Config, view: View, suffix: str = "") -> state.SpeedTable:
    """Create speed.<view><suffix> if missing, with the view's definition pinned to it; return its record."""
    return make_speed_table(config, base_table(view.name, suffix), view, None, view_definition(view.name),
                            f"Real-time part of view {view.name}, appended by the speed job.")


def ensure_speed_tables(config: Config, target: SpeedTarget) -> list[dict[str, Any]]:
    """Create the target's speed tables that are missing; return what its job runs: [{table, definition}].

    A table's definition is the one pinned to it in the state store when it was made, so a restart
    runs the logic the table was started with; the store also records the job that writes it.
    Views whose base is retired, or whose serving reads a reprocessed version, are left to their
    own jobs.
    """
    running = []
    for view in lambda_views():
        if target.views and view.name not in target.views:
            continue
        if not target.table_suffix and live_version(config, view.name) is not None:
            continue  # reprocessed: its own job writes speed.<view>__v<N>
        table = create_base_table(config, view, target.table_suffix)
        if table.retired_at is not None:
            continue
        if table.speed_job != target.to_record():
            state.set_speed_job(config, table.table_name, target.to_record())
        running.append({"table": table.table_name, "definition": table.definition})
    return running


def view_definition(name: str) -> dict[str, Any]:
    from lambdalake.views import find_view

    return find_view(name)[1]


def job_args(topic: str, group_id: str, views: list[dict[str, Any]], config: Config,
             horizon_seconds: int | None = None) -> list[str]:
    """The arguments of flink_jobs/speed.py: what it reads, and each view's table and definition."""
    horizon = config.dedup.horizon_seconds if horizon_seconds is None else horizon_seconds
    return ["--topic", topic, "--group-id", group_id, "--views", json.dumps(views),
            "--window-seconds", str(config.speed.window_seconds), "--dedup-horizon-seconds", str(horizon)]


def start(config: Config, target: SpeedTarget, *, parallelism: int | None = None, savepoint: str | None = None,
          settings: Mapping[str, str] | None = None, emit_from: datetime | None = None) -> str | None:
    """Create the speed tables if needed and submit the job unless it is live; return its job id.

    None when no view is left for it to run. settings: Flink settings for this job over the
    cluster's (benchmarks), e.g. {"execution.checkpointing.interval": "2 s"}. emit_from: start without state, re-reading the log
    from one dedup horizon before it, and count only records that reached Kafka from then on.
    """
    from lambdalake.state import watch

    views = ensure_speed_tables(config, target)
    if not views:
        return None
    watch(config, target.topic)
    args = job_args(target.topic, target.group_id, views, config, target.horizon_seconds)
    args += jobs.setting_args(settings or {})
    if emit_from is not None:
        horizon = config.dedup.horizon_seconds if target.horizon_seconds is None else target.horizon_seconds
        replay_from = max(emit_from.timestamp() - horizon, 0)
        args += ["--replay-from-ms", str(int(replay_from * 1000)), "--emit-from-ms", str(int(emit_from.timestamp() * 1000))]
    return jobs.submit(config, SPEED_JOB, args, target.job_name, parallelism=parallelism or config.speed.parallelism,
                       savepoint=savepoint)


def restart(config: Config, target: SpeedTarget, on_cutoff: Callable[[datetime], None] = lambda _: None) -> str | None:
    """Resubmit the job for the views it runs now (one was retired), counting no event twice or never.

    Flink maps savepoint state to operators by their place in the job graph, so a job with one
    view fewer cannot take over the old job's windows and deduplication state. Instead:
    1. read the offsets the job committed at its last checkpoint: it had read every record before
       them by then;
    2. cutoff C = the minute in which the first record not read at those offsets reached Kafka
       (given to on_cutoff, so that an interrupted restart can be resumed);
    3. stop the job with a savepoint, draining it: every row it holds is judged and aggregated and
       the savepoint commits them, so every record stamped before C is in the speed tables (each
       of its earlier copies was stamped before C too, so was read, and was judged exactly);
    4. `resume` from C, which deletes the rows from C on, judged on a partial log.
    """
    read_at = datetime.now(timezone.utc)  # a record not yet appended by now is stamped later
    cutoff = floor_to_bucket(min([*offsets.first_unread_times(config, target.topic, target.group_id), read_at]))
    on_cutoff(cutoff)
    drained = jobs.stop(config, target.job_name, drain=True)
    job_id = resume(config, target, cutoff)
    jobs.remove_state(config, drained)  # a drained savepoint restores nothing
    return job_id


def resume(config: Config, target: SpeedTarget, cutoff: datetime) -> str | None:
    """Start the stopped job anew from cutoff: delete its views' rows from then on, then submit it
    without state, re-reading the log from one dedup horizon before cutoff (so it can judge every
    copy after it) and counting the records stamped from cutoff on. Safe to repeat.

    Until the job catches up, those views' speed rows from cutoff on are missing: serving is
    below the truth for a moment, never above it.
    """
    for view in ensure_speed_tables(config, target):
        run_delete(config, f"delete from {names.trino_table(view['table'])} where ingest_bucket >= ?", [cutoff])
    return start(config, target, emit_from=cutoff)
