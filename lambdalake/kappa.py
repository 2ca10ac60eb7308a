"""Reprocessing: replay the log into a new version of a view, then switch serving to it.

A view's stream logic has a version: the `version` of its definition in views/<view>.yaml.
Reprocessing version N (DESIGN.md section 6):

1. **start** — create `speed.<view>__v<N>` (the state store keeps the definition it was made
   for, so its logic stays pinned after the YAML moves on) and submit the Flink job
   `lambdalake-kappa-<view>-v<N>`. Its consumer group is new, so it reads from the earliest offset;
   Kafka keeps the events topic forever (`retention.ms=-1`).
2. **catch up** — wait until the job's consumer lag (Kafka's high watermark minus the offset Flink
   committed at its last checkpoint, summed over partitions) is at most a threshold.
3. **switch** — one `CREATE OR REPLACE VIEW serving.<view>` over the new table: every query
   answers from exactly one version.
4. **retire** — cancel the other versions' jobs and record their tables retired; drop each after a
   grace period (queries that began before the switch may still read it).

A **kappa** view is served from its live version alone. A **lambda** view is too, right after the
switch (the replayed table covers the whole log); from the next `batch_recompute` on, its batch
layer recomputes the live version's logic into `batch.<view>__v<N>__b<B>` and serving merges it
with `speed.<view>__v<N>` from B. Retiring a lambda view's base (`speed.<view>`, a branch of the
shared speed job) restarts the shared job without it (lambdalake.speed.restart).

Every step is idempotent, and before step 3 serving still names the old, complete tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lambdalake import jobs, names, offsets, serving, state
from lambdalake.config import Config
from lambdalake.errors import EngineError
from lambdalake.serving import live_version
from lambdalake.speed import SPEED_JOB, SpeedTarget, job_args, restart, resume
from lambdalake.versions import (base_table, drop_speed_table, make_speed_table, pinned_definition, pinned_view,
                                 table_versions, version_job, version_table)
from lambdalake.views import View, ViewError, find_view, parse_view

__all__ = ["live_version", "table_versions", "version_job", "version_table"]


class ReprocessError(ViewError):
    """A reprocessing request is refused (bad view, bad version); nothing was started."""


@dataclass(frozen=True)
class Version:
    """One version of a kappa view: its table, its Flink job, and the topic it replays."""

    view: View
    #: the definition as written in views/<view>.yaml when this version started
    definition: dict[str, Any]
    topic: str

    @property
    def number(self) -> int:
        return self.view.version

    @property
    def table(self) -> str:
        return version_table(self.view.name, self.number)

    @property
    def job_name(self) -> str:
        return version_job(self.view.name, self.number)

    @property
    def group_id(self) -> str:
        return f"{self.job_name}-{self.topic}"


def serving_version(config: Config, view: View) -> int | None:
    """The version serving.<view> answers from: a reprocessed one, else a lambda view's base."""
    live = live_version(config, view.name)
    if live is None and view.mode == "lambda" and (base := pinned_view(config, base_table(view.name))) is not None:
        return base.version
    return live


def check_request(config: Config, view_name: str, number: object, topic: str | None = None) -> Version:
    """The version to reprocess, or ReprocessError saying why not. Starts nothing.

    The view must exist; `number` must be the version its definition states now (the logic that
    will run) and greater than the version serving answers from.
    """
    view, definition = find_view(view_name)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ReprocessError(f"version {number!r} must be a positive integer")
    if number != view.version:
        raise ReprocessError(f"views/{view.name}.yaml defines version {view.version}, not {number}: change "
                             "the definition and set its version to the one you reprocess")
    live = serving_version(config, view)
    if live is not None and number <= live:
        raise ReprocessError(f"version {number} of {view.name} is not greater than the live version {live}")
    return Version(view, definition, names.topic_name(topic or config.kafka.events_topic))


def pinned_version(config: Config, view_name: str, number: int, topic: str) -> Version:
    """Version `number` of the view: its definition from its table once started, else from views/."""
    table = version_table(view_name, number)
    definition = pinned_definition(config, table)
    if definition is not None:
        return Version(parse_view(definition, table), definition, topic)
    view, definition = find_view(view_name)
    if view.version != number:
        raise ReprocessError(f"views/{view_name}.yaml now defines version {view.version}, not {number}")
    return Version(view, definition, topic)


def _pinned_definition(config: Config, version: Version) -> dict[str, Any]:
    """Create the version's table with its definition, or check an existing one was made for the same."""
    made = make_speed_table(config, version.table, version.view, version.number, version.definition,
                            f"Version {version.number} of view {version.view.name}, replayed from the log.")
    if made.definition != json.loads(json.dumps(version.definition)):
        raise ReprocessError(f"{version.table} was started from another definition of version {version.number}; "
                             f"views/{version.view.name}.yaml changed without a new version: bump it")
    return version.definition


def start(config: Config, version: Version) -> str:
    """Create the version's table and submit its job unless it is live; return the Flink job id."""
    from lambdalake.state import watch

    definition = _pinned_definition(config, version)
    watch(config, version.topic)
    args = job_args(version.topic, version.group_id, [{"table": version.table, "definition": definition}], config)
    return jobs.submit(config, SPEED_JOB, args, version.job_name, parallelism=config.kappa.parallelism)


def lag_of(config: Config, version: Version) -> int:
    """The version's consumer lag; EngineError when its job is not live (a dead job never catches up)."""
    if not jobs.live_jobs(config, version.job_name):
        raise EngineError(f"Flink job {version.job_name} is not running; see the Flink UI for why")
    return offsets.lag(config, version.topic, version.group_id)


def wait_caught_up(config: Config, version: Version, threshold: int, timeout: float,
                   say: Callable[[str], None]) -> int:
    """Wait until the version's lag is at most threshold, saying the lag as it falls; return it."""
    deadline = time.monotonic() + timeout
    while (lag := lag_of(config, version)) > threshold:
        say(f"{version.job_name}: lag {lag} records (threshold {threshold})")
        if time.monotonic() > deadline:
            raise EngineError(f"{version.job_name} did not catch up in {timeout:.0f}s (lag {lag}); "
                              "serving is unchanged")
        time.sleep(5)
    say(f"{version.job_name}: caught up, lag {lag} records")
    return lag


def switch(config: Config, version: Version) -> None:
    """Point serving.<view> at the version's table alone, in one statement.

    Called once the job has caught up: its committed offsets are then near the end of the log,
    but the rows of the last records it read are appended once the watermark (moved on by the
    heartbeats) closes their ingest-time window, and committed at the next checkpoint, so wait
    that long first. The serving lock keeps a batch run from swapping the old version back in
    meanwhile; the state store records the switch (lambdalake.serving).
    """
    time.sleep(config.speed.window_seconds + config.kafka.heartbeat_seconds + config.kafka.watermark_delay_seconds
               + config.flink.checkpoint_seconds)
    serving_view = f"serving.{version.view.name}"
    with serving.lock(config, serving_view):
        serving.publish(config, version.view, serving_view, kind="switch", speed_table=version.table,
                        version=version.number)


def retire_others(config: Config, view_name: str, keep: int) -> list[str]:
    """Stop every other version's stream job; record their tables retired (once). Return those tables.

    A lambda view's base is a branch of the shared speed job: that job is restarted without it
    (unless it has been started since the base was retired), or resumed if a restart was cut short.
    """
    if live_version(config, view_name) != keep:
        raise EngineError(f"serving.{view_name} does not read version {keep}: nothing is retired before the switch")
    retired = []
    for number in table_versions(config, view_name):
        if number != keep:
            jobs.cancel(config, version_job(view_name, number))
            state.retire_speed_table(config, version_table(view_name, number))
            retired.append(version_table(view_name, number))
    base = state.speed_table(config, base_table(view_name))
    if base is not None:
        retired_at = state.retire_speed_table(config, base.table_name)
        if base.speed_job is not None:
            target = SpeedTarget.from_record(base.speed_job)
            started = jobs.started_at(config, target.job_name)
            if started is not None and started < retired_at:
                restart(config, target, lambda cutoff: state.set_restart_cutoff(config, base.table_name, cutoff))
            elif started is None and base.restart_cutoff is not None:
                resume(config, target, base.restart_cutoff)
        retired.append(base.table_name)
    return retired


@dataclass(frozen=True)
class Retirement:
    #: retired tables still in their grace period
    waiting: list[str]
    #: tables dropped now (speed tables and their batch tables)
    dropped: list[str]


def drop_retired(config: Config, view_name: str, grace_seconds: int) -> Retirement:
    """Drop the view's retired speed tables (and their batch tables) once their grace period is over
    and they are older than `[serving] history_retention` (answers from before the switch read them).

    Tables past their grace period but within the retention are neither waiting nor dropped: the
    janitor (lambdalake.janitor) runs this again later.
    """
    live = live_version(config, view_name)
    candidates = [t for t in state.version_tables(config, view_name) if t.version != live]
    if live is not None and (base := state.speed_table(config, base_table(view_name))) is not None:
        candidates.append(base)
    waiting, dropped = [], []
    for table in candidates:
        if table.retired_at is None:
            continue
        age = (datetime.now(timezone.utc) - table.retired_at).total_seconds()
        if age < grace_seconds:
            waiting.append(table.table_name)
            continue
        if age < config.serving.history_seconds:
            continue
        dropped += serving.drop_batch_tables(config, f"serving.{view_name}", speed_table=table.table_name)
        drop_speed_table(config, table.table_name)
        dropped.append(table.table_name)
    return Retirement(waiting, dropped)


def reprocess(config: Config, view_name: str, number: int, say: Callable[[str], None], *,
              topic: str | None = None, lag_threshold: int | None = None, grace_seconds: int | None = None) -> None:
    """The whole protocol, as the `kappa_reprocess` DAG runs it, in this process.

    Run again after an interruption past the switch, it finishes retiring the older versions.
    """
    started = time.monotonic()
    names.view_name(view_name)  # before anything reaches an engine
    if live_version(config, view_name) == number:
        say(f"version {number} of {view_name} is live already: retiring the older versions")
    else:
        version = check_request(config, view_name, number, topic)
        say(f"{version.job_name}: submitted as Flink job {start(config, version)}, replaying {version.topic}")
        threshold = config.kappa.lag_threshold if lag_threshold is None else lag_threshold
        wait_caught_up(config, version, threshold, config.kappa.catch_up_timeout, say)
        switch(config, version)
        say(f"serving.{view_name} now reads {version.table} ({time.monotonic() - started:.0f}s after the request)")
    retired = retire_others(config, view_name, number)
    grace = config.kappa.grace_period if grace_seconds is None else grace_seconds
    if retired:
        say(f"cancelled the jobs of {', '.join(retired)}; dropping those tables after their {grace}s grace period")
    while drop_retired(config, view_name, grace).waiting:
        time.sleep(min(5, max(grace, 1)))
    say("done")


@dataclass(frozen=True)
class VersionStatus:
    view: str
    version: int
    table: str
    live: bool
    job: str
    job_state: str
    retired_at: str | None
    lag: int | None


def describe(config: Config, view_names: list[str]) -> list[VersionStatus]:
    """Every version with a table, for each named view (a lambda view's base first): whether
    serving reads it, its job and that job's state, when it was retired, its consumer lag."""
    statuses = []
    for name in map(names.view_name, view_names):
        live = live_version(config, name)
        found = []
        base = state.speed_table(config, base_table(name))
        if base is not None and base.speed_job is not None:
            target = SpeedTarget.from_record(base.speed_job)
            found.append((base.definition["version"], base, target.job_name, target.topic, target.group_id,
                          live is None))
        for table in state.version_tables(config, name):
            job = version_job(name, table.version)
            found.append((table.version, table, job, config.kafka.events_topic,
                          f"{job}-{config.kafka.events_topic}", table.version == live))
        for number, table, job, topic, group_id, is_live in found:
            running = bool(jobs.live_jobs(config, job)) and table.retired_at is None
            statuses.append(VersionStatus(name, number, table.table_name, is_live, job,
                                          "running" if running else "not running",
                                          None if table.retired_at is None else table.retired_at.isoformat(),
                                          offsets.lag(config, topic, group_id) if running else None))
    return statuses
