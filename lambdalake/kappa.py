"""Kappa reprocessing: replay the log into a new versioned table, then switch serving to it.

A kappa view is served from its stream job alone, and that job has a version: the `version` of
its definition in views/<view>.yaml. Reprocessing version N (DESIGN.md section 6):

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

Every step is idempotent, and before step 3 serving still names the old, complete table.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lambdalake import jobs
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.derive import serving_view_sql, speed_fields, speed_partition_by
from lambdalake.errors import EngineError
from lambdalake.query import run_query
from lambdalake.tables import build_schema, create_if_missing
from lambdalake.views import View, ViewError, find_view, parse_view

KAPPA_JOB = PROJECT_ROOT / "flink_jobs" / "kappa.py"
DEFINITION_PROPERTY = "lambdalake.view-definition"
RETIRED_PROPERTY = "lambdalake.retired-at"


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


def version_table(view_name: str, number: int) -> str:
    return f"speed.{view_name}__v{number}"


def version_job(view_name: str, number: int) -> str:
    return f"lambdalake-kappa-{view_name}-v{number}"


def table_versions(config: Config, view_name: str) -> list[int]:
    """The versions of the view that have a table, oldest first."""
    _, rows = run_query(config, "show tables from speed")
    pattern = re.compile(rf"{re.escape(view_name)}__v(\d+)")
    return sorted(int(m[1]) for (name,) in rows if (m := pattern.fullmatch(name)))


def live_version(config: Config, view_name: str) -> int | None:
    """The version serving.<view> reads now (from the view's own SQL), None when it has none."""
    _, rows = run_query(config, "select view_definition from information_schema.views "
                                f"where table_schema = 'serving' and table_name = '{view_name}'")
    if not rows:
        return None
    # the table as serving_view_sql quotes it, or as a hand-written view may name it
    match = re.search(rf'"?speed"?\."?{re.escape(view_name)}__v(\d+)\b', rows[0][0], re.IGNORECASE)
    return int(match[1]) if match else None


def check_request(config: Config, view_name: str, number: object, topic: str | None = None) -> Version:
    """The version to reprocess, or ReprocessError saying why not. Starts nothing.

    The view must exist and be `kappa`; `number` must be the version its definition states now
    (the logic that will run) and greater than the live version.
    """
    view, definition = find_view(view_name)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ReprocessError(f"version {number!r} must be a positive integer")
    if view.mode != "kappa":
        raise ReprocessError(f"{view.name} is a {view.mode} view: the speed job and batch_recompute keep it; "
                             "only kappa views are reprocessed (set `mode: kappa` to serve it from its stream "
                             "job alone)")
    if number != view.version:
        raise ReprocessError(f"views/{view.name}.yaml defines version {view.version}, not {number}: change "
                             "the definition and set its version to the one you reprocess")
    live = live_version(config, view.name)
    if live is not None and number <= live:
        raise ReprocessError(f"version {number} of {view.name} is not greater than the live version {live}")
    return Version(view, definition, jobs.check_name(topic or config.kafka.events_topic, "topic"))


def pinned_version(config: Config, view_name: str, number: int, topic: str) -> Version:
    """Version `number` of the view: its definition from its table once started, else from views/."""
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    table = version_table(view_name, number)
    if catalog.table_exists(table):
        definition = json.loads(catalog.load_table(table).properties[DEFINITION_PROPERTY])
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
                      f"Version {version.number} of kappa view {version.view.name}, replayed from the log.",
                      {DEFINITION_PROPERTY: text})
    stored = load_catalog(config).load_table(version.table).properties.get(DEFINITION_PROPERTY)
    if stored != text:
        raise ReprocessError(f"{version.table} was started from another definition of version {version.number}; "
                             f"views/{version.view.name}.yaml changed without a new version: bump it")
    return version.definition


def start(config: Config, version: Version) -> str:
    """Create the version's table and submit its job unless it is live; return the Flink job id."""
    definition = _pinned_definition(config, version)
    args = ["--topic", version.topic, "--group-id", version.group_id, "--table", version.table,
            "--view-definition", json.dumps(definition), "--window-seconds", str(config.speed.window_seconds),
            "--dedup-ttl", config.speed.dedup_ttl]
    return jobs.submit(config, KAPPA_JOB, args, version.job_name, parallelism=config.kappa.parallelism)


def consumer_lag(config: Config, topic: str, group_id: str) -> int:
    """Records of topic not yet committed by group_id, over all partitions (all of them before any commit)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": f"{config.host}:{config.kafka.port}", "group.id": group_id,
                         "enable.auto.commit": False, "log_level": 0})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            raise EngineError(f"Kafka topic {topic!r} not found")
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        lag = 0
        for committed in consumer.committed(partitions, timeout=10):
            low, high = consumer.get_watermark_offsets(committed, timeout=10)
            lag += high - (committed.offset if committed.offset >= 0 else low)
        return lag
    finally:
        consumer.close()


def lag_of(config: Config, version: Version) -> int:
    """The version's consumer lag; EngineError when its job is not live (a dead job never catches up)."""
    if not jobs.live_jobs(config, version.job_name):
        raise EngineError(f"Flink job {version.job_name} is not running; see the Flink UI for why")
    return consumer_lag(config, version.topic, version.group_id)


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
    """Point serving.<view> at the version's table, in one statement.

    Called once the job has caught up: its committed offsets are then near the end of the log,
    but the rows of the last records it read are appended at the end of their processing-time
    window and committed at the next checkpoint, so wait that long first.
    """
    time.sleep(config.speed.window_seconds + config.flink.checkpoint_seconds)
    run_query(config, serving_view_sql(version.view, config.iceberg.catalog_name, f"serving.{version.view.name}",
                                       version.table, None, None))


def retire_others(config: Config, view_name: str, keep: int) -> list[str]:
    """Cancel every other version's job; mark their tables retired (once). Return those tables."""
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    retired = []
    for number in table_versions(config, view_name):
        if number == keep:
            continue
        jobs.cancel(config, version_job(view_name, number))
        table = catalog.load_table(version_table(view_name, number))
        if RETIRED_PROPERTY not in table.properties:
            with table.transaction() as transaction:
                transaction.set_properties({RETIRED_PROPERTY: datetime.now(timezone.utc).isoformat()})
        retired.append(version_table(view_name, number))
    return retired


def drop_retired(config: Config, view_name: str, grace_seconds: int) -> list[str]:
    """Drop the view's retired tables whose grace period is over; return those still waiting."""
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    live = live_version(config, view_name)
    waiting = []
    for number in table_versions(config, view_name):
        table = version_table(view_name, number)
        retired_at = catalog.load_table(table).properties.get(RETIRED_PROPERTY)
        if number == live or retired_at is None:
            continue
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(retired_at)).total_seconds()
        if age >= grace_seconds:
            run_query(config, f"drop table if exists {table}")
        else:
            waiting.append(table)
    return waiting


def reprocess(config: Config, view_name: str, number: int, say: Callable[[str], None], *,
              topic: str | None = None, lag_threshold: int | None = None, grace_seconds: int | None = None) -> None:
    """The whole protocol, as the `kappa_reprocess` DAG runs it, in this process.

    Run again after an interruption past the switch, it finishes retiring the older versions.
    """
    started = time.monotonic()
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
    while drop_retired(config, view_name, grace):
        time.sleep(min(5, max(grace, 1)))
    say("done")


@dataclass(frozen=True)
class VersionStatus:
    view: str
    version: int
    live: bool
    job: str
    retired_at: str | None
    lag: int | None


def describe(config: Config, view_names: list[str]) -> list[VersionStatus]:
    """Every version with a table, for each named view: live or not, its job's state, its lag."""
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    statuses = []
    for name in view_names:
        live = live_version(config, name)
        for number in table_versions(config, name):
            table = catalog.load_table(version_table(name, number))
            definition = parse_view(json.loads(table.properties[DEFINITION_PROPERTY]), version_table(name, number))
            running = bool(jobs.live_jobs(config, version_job(name, number)))
            version = Version(definition, {}, config.kafka.events_topic)
            lag = consumer_lag(config, version.topic, version.group_id) if running else None
            statuses.append(VersionStatus(name, number, number == live, "running" if running else "not running",
                                          table.properties.get(RETIRED_PROPERTY), lag))
    return statuses
