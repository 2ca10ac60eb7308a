"""
### Platform health

Runs every few minutes (`[serving] health_schedule`) and fails, naming what is wrong, when:

1. **engines** — an engine (PostgreSQL, Kafka, Flink, Trino, Airflow) is unhealthy, as
   `lambdalake status` says;
2. **jobs** — a job the platform started (recorded in its state store) is not running;
3. **views** — a view is behind its freshness target (`freshness:` in `views/<view>.yaml`,
   else `[serving] freshness_target`) by more than `[serving] freshness_grace`, or a lambda
   view's batch run is overdue (`[serving] batch_overdue`). What it measured is appended to
   the Iceberg table `meta.view_freshness`, a time series kept for `[serving] meta_retention`.

It also copies the serving state store's history into the Iceberg table `meta.serving_steps`
(**serving_history**), so that any Trino client can query what serving answered from and when.

Triggered by hand, **Freshness grace** overrides `[serving] freshness_grace` for that run: `0 s`
checks every view against its target strictly, now. Scheduled runs use the configured grace.

A fresh `up`, before any job was started, is healthy. A failed run shows in the UI; set
`on_failure_callback` in `lambdalake/dag_defaults.py` (or Airflow's own notifiers) to send a
mail or a chat message.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param, dag, task

from lambdalake.config import DURATION_PATTERN, load_config
from lambdalake.dag_defaults import clock, dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    **dag_defaults(retries=1, retry_delay_seconds=10),  # AirflowFailException is not retried
    schedule=clock(load_config().serving.health_schedule),
    tags=["lambdalake", "platform"],
    params={
        # optional: null allowed, else Airflow's form shows it as required (DEVELOPERS.md)
        "freshness_grace": Param(None, type=["null", "string"], pattern=DURATION_PATTERN, title="Freshness grace",
                                 description="How long a view may be past its freshness target before this run "
                                             "fails, such as '0 s' or '30 s'; empty: [serving] freshness_grace"),
    },
)
def platform_health() -> None:
    @task
    def engines() -> dict[str, str]:
        from lambdalake.platform import require_healthy

        return require_healthy(load_config())

    @task
    def jobs() -> list[str]:
        from airflow.sdk.exceptions import AirflowFailException

        from lambdalake.keeper import job_statuses

        statuses = job_statuses(load_config())
        for status in statuses:
            print(f"{status.name}: {status.state}, {status.detail}")
        failing = [f"{s.name} is {s.state}: {s.detail}" for s in statuses if not s.healthy]
        if failing:
            raise AirflowFailException("; ".join(failing))
        return [s.name for s in statuses]

    @task
    def views(params: dict) -> list[dict]:  # type: ignore[type-arg]
        from airflow.sdk.exceptions import AirflowFailException

        from datetime import datetime, timezone

        from lambdalake.config import duration_seconds
        from lambdalake.freshness import measure_all, problems, record

        config = load_config()
        grace = params.get("freshness_grace")
        grace_seconds = None if grace is None else duration_seconds(grace, "param freshness_grace")
        now = datetime.now(timezone.utc)
        measured = measure_all(config, now, split=True)
        record(config, measured, now)  # kept whatever the check finds: the history shows the miss
        for m in measured:
            print(f"serving.{m.view}: freshness {m.freshness_seconds} s (target {m.target_seconds} s), "
                  f"lag {m.lag_records} records, B {m.boundary}")
        found = problems(config, measured, grace_seconds)
        if found:
            raise AirflowFailException("; ".join(found))
        return [m.to_dict() for m in measured]

    @task
    def serving_history() -> int:
        from datetime import datetime, timezone

        from lambdalake.state import LAKE_COPY, copy_to_lake

        copied = copy_to_lake(load_config(), datetime.now(timezone.utc))
        print(f"copied {copied} serving steps into {LAKE_COPY}")
        return copied

    engines() >> [jobs(), views(), serving_history()]


platform_health()
