"""The shared speed job (flink_jobs/speed.py): lambda views' real-time parts, into `speed.<view>` tables.

`start` creates each view's speed table (its schema derived from the view definition, the
definition pinned in its properties) before submitting; `lambdalake.jobs.stop` stops it with a
savepoint to resume from. A view that has been reprocessed (lambdalake.kappa) runs in a job of
its own instead: `restart` resubmits the shared job without it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from lambdalake import jobs
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.derive import speed_fields, speed_partition_by
from lambdalake.errors import ConfigError
from lambdalake.tables import build_schema, create_if_missing
from lambdalake.versions import DEFINITION_PROPERTY, RETIRED_PROPERTY, base_table, live_version
from lambdalake.views import View, lambda_views

SPEED_JOB = PROJECT_ROOT / "flink_jobs" / "speed.py"
#: on a base speed table: the SpeedTarget (JSON) of the shared job that writes it
SPEED_JOB_PROPERTY = "lambdalake.speed-job"


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

    @classmethod
    def default(cls, config: Config) -> SpeedTarget:
        return cls(config.kafka.events_topic, config.speed.group_id, config.speed.job_name)

    @classmethod
    def from_json(cls, text: str) -> SpeedTarget:
        data = json.loads(text)
        return cls(**{**data, "views": tuple(data.get("views", ()))})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def __post_init__(self) -> None:
        jobs.check_name(self.topic, "topic")
        jobs.check_name(self.group_id, "consumer group")
        jobs.check_name(self.job_name, "job name")
        if not re.fullmatch(r"[a-z0-9_]*", self.table_suffix):
            raise ConfigError(f"table suffix {self.table_suffix!r} may only hold a-z, 0-9 and '_'")

    def table(self, view: View) -> str:
        return base_table(view.name, self.table_suffix)


def create_base_table(config: Config, view: View, suffix: str = "") -> str:
    """Create speed.<view><suffix> if missing, with the view's definition pinned in it; return its name."""
    schema, spec = build_schema(speed_fields(view), speed_partition_by())
    name = base_table(view.name, suffix)
    create_if_missing(config, name, schema, spec, f"Real-time part of view {view.name}, appended by the speed job.",
                      {DEFINITION_PROPERTY: json.dumps(view_definition(view.name), sort_keys=True)})
    return name


def ensure_speed_tables(config: Config, target: SpeedTarget) -> list[dict[str, Any]]:
    """Create the target's speed tables that are missing; return what its job runs: [{table, definition}].

    A table's definition is the one pinned in its properties (pinned now if it has none), so a
    restart runs the logic the table was started with; the table also names the job that
    writes it. Views whose base is retired, or whose serving reads a reprocessed version, are
    left to their own jobs.
    """
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    running = []
    for view in lambda_views():
        if target.views and view.name not in target.views:
            continue
        if not target.table_suffix and live_version(config, view.name) is not None:
            continue  # reprocessed: its own job writes speed.<view>__v<N>
        table = catalog.load_table(create_base_table(config, view, target.table_suffix))
        if RETIRED_PROPERTY in table.properties:
            continue
        pinned = {DEFINITION_PROPERTY: table.properties.get(DEFINITION_PROPERTY)
                  or json.dumps(view_definition(view.name), sort_keys=True), SPEED_JOB_PROPERTY: target.to_json()}
        if any(table.properties.get(key) != value for key, value in pinned.items()):
            with table.transaction() as transaction:
                transaction.set_properties(pinned)
        running.append({"table": target.table(view), "definition": json.loads(pinned[DEFINITION_PROPERTY])})
    return running


def view_definition(name: str) -> dict[str, Any]:
    from lambdalake.views import find_view

    return find_view(name)[1]


def job_args(topic: str, group_id: str, views: list[dict[str, Any]], config: Config) -> list[str]:
    """The arguments of flink_jobs/speed.py: what it reads, and each view's table and definition."""
    return ["--topic", topic, "--group-id", group_id, "--views", json.dumps(views),
            "--window-seconds", str(config.speed.window_seconds), "--dedup-ttl", config.speed.dedup_ttl]


def start(config: Config, target: SpeedTarget, *, parallelism: int | None = None, savepoint: str | None = None,
          checkpoint_interval: str | None = None, allow_non_restored_state: bool = False) -> str | None:
    """Create the speed tables if needed and submit the job unless it is live; return its job id.

    None when no view is left for it to run. checkpoint_interval (a Flink duration) overrides
    the cluster's for this job (benchmarks).
    """
    views = ensure_speed_tables(config, target)
    if not views:
        return None
    args = job_args(target.topic, target.group_id, views, config)
    if checkpoint_interval:
        args += ["--checkpoint-interval", checkpoint_interval]
    return jobs.submit(config, SPEED_JOB, args, target.job_name, parallelism=parallelism or config.speed.parallelism,
                       savepoint=savepoint, allow_non_restored_state=allow_non_restored_state)


def restart(config: Config, target: SpeedTarget) -> str | None:
    """Stop the job with a savepoint and resubmit it for the views it runs now; return the new job id.

    Flink maps savepoint state to operators by their place in the job graph, so with one view
    fewer only the Kafka positions are restored: the other views lose their windows in progress
    and their deduplication state (the next batch run, once its boundary passes the restart,
    makes them exact again).
    """
    savepoint = jobs.stop(config, target.job_name)
    return start(config, target, savepoint=savepoint, allow_non_restored_state=True)
