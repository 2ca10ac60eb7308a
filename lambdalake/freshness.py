"""How fresh each serving view is, against its target: what `lambdalake status` and
`platform_health` show.

Per view:
- the job that feeds its speed part: the shared speed job for a lambda view's base, else its
  live reprocessed version's job (both as recorded in the state store, with their topic and
  consumer group);
- **freshness**: now minus the time the oldest event that job has not committed reached Kafka,
  or 0 when it has committed every event (an idle stream is fresh; heartbeats are no events). The job
  commits its offsets when a checkpoint completes, which is when its speed rows become visible
  in serving; rows of a window still open are not yet there, so freshness can read up to one
  `[speed] window_seconds` low;
- the consumer lag in records;
- B, its age, and the last batch step (lambda views).

A view whose job has never been started is not measured: a fresh `up` is healthy.

`record` appends what was measured to the Iceberg table meta.view_freshness (declared in
iceberg/tables.yaml), the time series `platform_health` keeps for `[serving] meta_retention`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lambdalake import offsets, state
from lambdalake.config import Config
from lambdalake.serving import live_version
from lambdalake.versions import base_table, version_job
from lambdalake.views import View, load_views


@dataclass(frozen=True)
class Freshness:
    view: str
    mode: str
    target_seconds: float
    #: the job feeding the view's speed part; None when none was ever started
    job: str | None
    freshness_seconds: float | None
    lag_records: int | None
    boundary: datetime | None
    boundary_age_seconds: float | None
    last_batch_seconds: float | None
    last_batch_at: datetime | None
    #: the speed table serving reads now; None before the view is first published
    speed_table: str | None = None
    #: the share of its answer now from the batch part, 0 to 1 (batch_share); None when not asked
    #: for (measure's `split`), or while it answers nothing
    batch_share: float | None = None

    @property
    def on_target(self) -> bool | None:
        """None when not measured."""
        return None if self.freshness_seconds is None else self.freshness_seconds <= self.target_seconds

    def to_dict(self) -> dict[str, Any]:
        data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
        return {**data, "on_target": self.on_target}


def feeding_job(config: Config, view: View) -> state.ExpectedJob | None:
    """The recorded job that writes the view's live speed table; None when none was started."""
    number = live_version(config, view.name)
    name = config.speed.job_name if number is None else version_job(view.name, number)
    job = next((j for j in state.expected_jobs(config, all_jobs=True) if j.name == name), None)
    if job is None:
        return None
    if number is None and ("--views" not in job.args or base_table(view.name) not in _arg(job, "--views")):
        return None  # the shared job was started before this view was added
    return job


def _arg(job: state.ExpectedJob, flag: str) -> str:
    return job.args[job.args.index(flag) + 1]


def measure(config: Config, view: View, now: datetime | None = None,
            job: state.ExpectedJob | None = None, split: bool = False) -> Freshness:
    """The view's freshness and batch state now; `job` overrides feeding_job (tests feed a view
    from a job of their own); `split` also asks Trino for its batch share."""
    now = now or datetime.now(timezone.utc)
    target = view.freshness_seconds or config.serving.seconds("freshness_target")
    job = job or feeding_job(config, view)
    freshness = lag = None
    if job is not None:
        topic, group = _arg(job, "--topic"), _arg(job, "--group-id")
        waiting = offsets.first_unread_times(config, topic, group, events_only=True)
        freshness = max(0.0, (now - min(waiting)).total_seconds()) if waiting else 0.0
        lag = offsets.lag(config, topic, group)
    step = state.live_step(config, f"serving.{view.name}")
    boundary = step.boundary if step is not None else None
    batch = step if step is not None and step.kind == "batch" else None
    return Freshness(view.name, view.mode, target, None if job is None else job.name, freshness, lag, boundary,
                     None if boundary is None else (now - boundary).total_seconds(),
                     None if batch is None else batch.seconds, None if batch is None else batch.live_at,
                     None if step is None else step.speed_table, batch_share(config, view) if split else None)


def measure_all(config: Config, now: datetime | None = None, split: bool = False) -> list[Freshness]:
    now = now or datetime.now(timezone.utc)
    return [measure(config, view, now, split=split) for view in load_views()]


def batch_share(config: Config, view: View) -> float | None:
    """The share of serving.<view>'s answer now that comes from its batch part, 0 to 1, by its
    first count or sum measure (lambdalake.derive.serving_split_sql); None while it answers
    nothing, or when its live tables no longer match the definition in views/."""
    from lambdalake.derive import serving_split_sql
    from lambdalake.errors import QueryError
    from lambdalake.query import run_query

    step = state.live_step(config, f"serving.{view.name}")
    if step is None:
        return None
    sql = serving_split_sql(view, config.iceberg.catalog_name, step.speed_table, step.batch_table, step.boundary)
    try:
        _, rows = run_query(config, sql)
    except QueryError:
        return None
    amounts = {layer: float(amount) for layer, amount in rows}
    total = sum(amounts.values())
    return amounts.get("batch", 0.0) / total if total else None


META_TABLE = "meta.view_freshness"
#: its columns, in the declared order (iceberg/tables.yaml)
META_COLUMNS = ("measured_at", "view", "mode", "target_seconds", "freshness_seconds", "on_target", "lag_records",
                "job", "boundary", "boundary_age_seconds", "last_batch_seconds", "last_batch_at", "speed_data_files",
                "batch_share")


def record(config: Config, measured: list[Freshness], now: datetime) -> None:
    """Append one row per view measured at `now` to meta.view_freshness (created on first use),
    with the data files of its live speed table (and its batch share, when measured with
    `split`); then drop the whole days older than
    `[serving] meta_retention` (a metadata-only delete: the table is partitioned by day)."""
    from lambdalake.maintenance import files_per_partition
    from lambdalake.query import run_delete, run_query
    from lambdalake.tables import ensure_table

    if not measured:
        return
    ensure_table(config, META_TABLE)
    rows = []
    for m in measured:
        files = sum(files_per_partition(config, m.speed_table)) if m.speed_table else None
        rows.append((now, f"serving.{m.view}", m.mode, m.target_seconds, m.freshness_seconds, m.on_target,
                     m.lag_records, m.job, m.boundary, m.boundary_age_seconds, m.last_batch_seconds,
                     m.last_batch_at, files, m.batch_share))
    row = "(" + ", ".join("?" for _ in META_COLUMNS) + ")"
    run_query(config, f"insert into {META_TABLE} ({', '.join(META_COLUMNS)}) values {', '.join(row for _ in rows)}",
              [value for r in rows for value in r])
    oldest_kept = (now - timedelta(seconds=config.serving.seconds("meta_retention"))).replace(
        hour=0, minute=0, second=0, microsecond=0)
    run_delete(config, f"delete from {META_TABLE} where measured_at < ?", [oldest_kept])


def problems(config: Config, measured: list[Freshness], grace: float | None = None) -> list[str]:
    """What `platform_health` fails on: views past their target by more than the grace
    (`[serving] freshness_grace` unless given, in seconds), lambda views whose batch run is
    overdue. Each names the view, the target and what was measured."""
    grace = config.serving.seconds("freshness_grace") if grace is None else grace
    overdue = config.serving.seconds("batch_overdue")
    found = []
    for m in measured:
        if m.freshness_seconds is not None and m.freshness_seconds > m.target_seconds + grace:
            found.append(f"serving.{m.view}: freshness {m.freshness_seconds:.0f} s, target {m.target_seconds:.0f} s "
                         f"(+{grace:.0f} s grace); its job {m.job} is behind or not running")
        if m.mode == "lambda" and m.boundary_age_seconds is not None and m.boundary_age_seconds > overdue:
            found.append(f"serving.{m.view}: B={m.boundary:%Y-%m-%d %H:%M} UTC is {m.boundary_age_seconds / 3600:.1f} h "
                         f"old, over [serving] batch_overdue = {config.serving.batch_overdue!r}: is batch_recompute "
                         "paused or failing?")
    return found
