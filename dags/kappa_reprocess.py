"""
### Kappa reprocess

Replays the Kafka log into a new version of a view, then switches `serving.<view>` to it.
Before triggering: change `views/<view>.yaml` and raise its `version`; give that view and version.

A **kappa** view is then served from the new version alone. A **lambda** view too, until the next
`batch_recompute`, which recomputes the new logic below its boundary and merges the new speed
table above it; its old speed part (a branch of the shared speed job) is retired by restarting
that job without it.

1. **validate** — the view exists, the version is the one its definition states, and it is
   greater than the live one. A refused request starts nothing.
2. **start** — creates `speed.<view>__v<N>` and submits its Flink job from the earliest offset.
3. **caught_up** — waits until the job's consumer lag is under the threshold (the lag is in the log).
4. **switch** — `CREATE OR REPLACE VIEW serving.<view>` over the new table, in one statement.
5. **retire** — cancels the older versions' jobs (restarts the shared speed job without a lambda
   view's base) and marks their tables retired.
6. **drop_retired** — waits out the grace period; drops those tables, and their batch tables, once
   they are also older than `[serving] history_retention` (else the hourly janitor does, later).

Safe to retry at any step: until **switch**, serving reads the old version's complete table.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param, PokeReturnValue, dag, task

from lambdalake import names
from lambdalake.config import load_config
from lambdalake.dag_defaults import dag_defaults
from lambdalake.views import load_views

CONFIG = load_config()


def _version(request: dict):  # type: ignore[no-untyped-def, type-arg]
    from lambdalake.kappa import pinned_version

    return pinned_version(load_config(), request["view"], request["version"], request["topic"])


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    **dag_defaults(),
    schedule=None,
    tags=["lambdalake", "kappa"],
    params={
        # required (no view is a sensible default); the views in views/ are offered as a list
        "view": Param("", type="string", pattern=names.VIEW_PATTERN, title="View",
                      examples=[view.name for view in load_views()],
                      description="A view in views/ (lowercase letters, digits, underscores)."),
        "version": Param(2, type="integer", minimum=1, title="New version",
                         description="The version its definition now states; greater than the live one."),
        "topic": Param(None, type=["null", "string"], pattern=names.TOPIC_PATTERN,
                       title="Kafka topic", description="Empty: the config's events topic."),
        "lag_threshold": Param(None, type=["null", "integer"], minimum=0, title="Lag threshold",
                               description=f"Records; empty: {CONFIG.kappa.lag_threshold} (config [kappa])."),
        "grace_seconds": Param(None, type=["null", "integer"], minimum=0, title="Grace period",
                               description=f"Seconds; empty: {CONFIG.kappa.grace_period} (config [kappa])."),
    },
)
def kappa_reprocess() -> None:
    @task
    def validate(params: dict) -> dict:  # type: ignore[type-arg]
        from airflow.sdk.exceptions import AirflowFailException

        from lambdalake.errors import ConfigError
        from lambdalake.kappa import check_request
        from lambdalake.views import ViewError

        try:
            version = check_request(load_config(), params["view"], params["version"], params["topic"])
        except (ViewError, ConfigError) as exc:
            raise AirflowFailException(str(exc)) from exc  # a refused request is not retried
        return {"view": version.view.name, "version": version.number, "topic": version.topic}

    @task
    def start(request: dict) -> str:  # type: ignore[type-arg]
        from lambdalake.kappa import start as submit

        return submit(load_config(), _version(request))

    @task.sensor(poke_interval=10, timeout=CONFIG.kappa.catch_up_timeout, mode="reschedule")
    def caught_up(request: dict, params: dict) -> PokeReturnValue:  # type: ignore[type-arg]
        from lambdalake.kappa import lag_of

        config = load_config()
        threshold = config.kappa.lag_threshold if params["lag_threshold"] is None else params["lag_threshold"]
        lag = lag_of(config, _version(request))
        print(f"consumer lag {lag} records (threshold {threshold})")
        return PokeReturnValue(is_done=lag <= threshold, xcom_value=lag)

    @task
    def switch(request: dict) -> str:  # type: ignore[type-arg]
        from lambdalake.kappa import switch as point_serving

        version = _version(request)
        point_serving(load_config(), version)
        return version.table

    @task
    def retire(request: dict) -> list[str]:  # type: ignore[type-arg]
        from lambdalake.kappa import retire_others

        return retire_others(load_config(), request["view"], request["version"])

    @task.sensor(poke_interval=10, mode="reschedule")
    def drop_retired(request: dict, params: dict) -> PokeReturnValue:  # type: ignore[type-arg]
        from lambdalake.kappa import drop_retired as drop

        config = load_config()
        grace = config.kappa.grace_period if params["grace_seconds"] is None else params["grace_seconds"]
        retirement = drop(config, request["view"], grace)
        print(f"dropped: {', '.join(retirement.dropped) or 'none'}; still in their grace period: "
              f"{', '.join(retirement.waiting) or 'none'}; the rest is kept for time travel "
              f"([serving] history_retention {config.serving.history_retention}) and dropped by the janitor")
        return PokeReturnValue(is_done=not retirement.waiting)

    request = validate()
    start(request) >> caught_up(request) >> switch(request) >> retire(request) >> drop_retired(request)


kappa_reprocess()
