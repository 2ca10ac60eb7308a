"""Reprocessing: replay the log into a new version of a view, then switch serving to it.

A view's stream logic has a version: the `version` of its definition in views/<view>.yaml.
Reprocessing version N (DESIGN.md section 6):

1. **start** — create `speed.<view>__v<N>` (the version's definition is kept in the table's
   properties, so its logic stays pinned after the YAML moves on) and submit the Flink job
   `lambdalake-kappa-<view>-v<N>`. Its consumer group is new, so it reads from the earliest offset;
   Kafka keeps the events topic forever (`retention.ms=-1`).
2. **catch up** — wait until the job's consumer lag (Kafka's high watermark minus the offset Flink
   committed at its last checkpoint, summed over partitions) is at most a threshold.
3. **switch** — one `CREATE OR REPLACE VIEW serving.<view>` over the new table: every query
   answers from exactly one version.
4. **retire** — cancel the other versions' jobs and mark their tables retired; drop each after a
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

from lambdalake import jobs, names, offsets, serving
from lambdalake.config import Config
from lambdalake.derive import speed_fields, speed_partition_by
from lambdalake.errors import EngineError
from lambdalake.query import run_query
from lambdalake.serving import live_version
from lambdalake.speed import SPEED_JOB, SPEED_JOB_PROPERTY, SpeedTarget, job_args, restart, resume
from lambdalake.tables import build_schema, create_if_missing
from lambdalake.versions import (DEFINITION_PROPERTY, RETIRED_PROPERTY, base_table, pinned_definition,
                                 pinned_view, table_versions, version_job, version_table)
from lambdalake.views import View, ViewError, find_view, parse_view

#: on a retired base table: the cutoff of the shared job's restart without it, to resume from
RESTART_CUTOFF_PROPERTY = "lambdalake.restart-cutoff"

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
    """Create the version's table with its definition, or check an existing one holds the same."""
    from lambdalake.catalog import load_catalog

    schema, spec = build_schema(speed_fields(version.view), speed_partition_by())
    text = json.dumps(version.definition, sort_keys=True)
    create_if_missing(config, version.table, schema, spec,
                      f"Version {version.number} of view {version.view.name}, replayed from the log.",
                      {DEFINITION_PROPERTY: text})
    stored = load_catalog(config).load_table(version.table).properties.get(DEFINITION_PROPERTY)
    if stored != text:
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


def _set_property(config: Config, table_name: str, key: str, value: str) -> None:
    from lambdalake.catalog import load_catalog

    with load_catalog(config).load_table(table_name).transaction() as transaction:
        transaction.set_properties({key: value})


def _retired_at(config: Config, table_name: str) -> datetime:
    """Mark the table retired, once; return when it was."""
    from lambdalake.catalog import load_catalog

    retired_at = load_catalog(config).load_table(table_name).properties.get(RETIRED_PROPERTY)
    if retired_at is None:
        retired_at = datetime.now(timezone.utc).isoformat()
        _set_property(config, table_name, RETIRED_PROPERTY, retired_at)
    return datetime.fromisoformat(retired_at)


def retire_others(config: Config, view_name: str, keep: int) -> list[str]:
    """Stop every other version's stream job; mark their tables retired (once). Return those tables.

    A lambda view's base is a branch of the shared speed job: that job is restarted without it
    (unless it has been started since the base was retired), or resumed if a restart was cut short.
    """
    from lambdalake.catalog import load_catalog

    if live_version(config, view_name) != keep:
        raise EngineError(f"serving.{view_name} does not read version {keep}: nothing is retired before the switch")
    retired = []
    for number in table_versions(config, view_name):
        if number != keep:
            jobs.cancel(config, version_job(view_name, number))
            _retired_at(config, version_table(view_name, number))
            retired.append(version_table(view_name, number))
    base = base_table(view_name)
    catalog = load_catalog(config)
    if catalog.table_exists(base):
        retired_at = _retired_at(config, base)
        properties = catalog.load_table(base).properties
        if SPEED_JOB_PROPERTY in properties:
            target = SpeedTarget.from_json(properties[SPEED_JOB_PROPERTY])
            started = jobs.started_at(config, target.job_name)
            if started is not None and started < retired_at:
                restart(config, target, lambda cutoff: _set_property(config, base, RESTART_CUTOFF_PROPERTY,
                                                                     cutoff.isoformat()))
            elif started is None and RESTART_CUTOFF_PROPERTY in properties:
                resume(config, target, datetime.fromisoformat(properties[RESTART_CUTOFF_PROPERTY]))
        retired.append(base)
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
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    live = live_version(config, view_name)
    candidates = [version_table(view_name, n) for n in table_versions(config, view_name) if n != live]
    if live is not None and catalog.table_exists(base_table(view_name)):
        candidates.append(base_table(view_name))
    waiting, dropped = [], []
    for table in candidates:
        retired_at = catalog.load_table(table).properties.get(RETIRED_PROPERTY)
        if retired_at is None:
            continue
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(retired_at)).total_seconds()
        if age < grace_seconds:
            waiting.append(table)
            continue
        if age < config.serving.history_seconds:
            continue
        dropped += serving.drop_batch_tables(config, f"serving.{view_name}", speed_table=table)
        run_query(config, f"drop table if exists {table}")
        dropped.append(table)
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
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    statuses = []
    for name in map(names.view_name, view_names):
        live = live_version(config, name)
        found = []
        if catalog.table_exists(base_table(name)):
            properties = catalog.load_table(base_table(name)).properties
            if SPEED_JOB_PROPERTY in properties and DEFINITION_PROPERTY in properties:
                target = SpeedTarget.from_json(properties[SPEED_JOB_PROPERTY])
                number = json.loads(properties[DEFINITION_PROPERTY])["version"]
                found.append((number, base_table(name), target.job_name, target.topic, target.group_id,
                              live is None, properties))
        for number in table_versions(config, name):
            properties = catalog.load_table(version_table(name, number)).properties
            job = version_job(name, number)
            found.append((number, version_table(name, number), job, config.kafka.events_topic,
                          f"{job}-{config.kafka.events_topic}", number == live, properties))
        for number, table, job, topic, group_id, is_live, properties in found:
            retired = properties.get(RETIRED_PROPERTY)
            running = bool(jobs.live_jobs(config, job)) and retired is None
            statuses.append(VersionStatus(name, number, table, is_live, job, "running" if running else "not running",
                                          retired, offsets.lag(config, topic, group_id) if running else None))
    return statuses
