"""
### Speed layer

Brings the speed layer up from wherever it is, and checks that it runs. Trigger it after `up`,
after stopping a job, or after adding or removing a lambda view in `views/`. Two tasks, side by
side (neither job needs the other to start):

1. **ingest** — the ingest job (Kafka → `raw.events`): left alone if it runs; resubmitted from
   its savepoint (`lambdalake ingest stop`) or its newest retained checkpoint if it was stopped
   or lost; submitted if it never was.
2. **speed** — the shared speed job (every lambda view's real-time part → `speed.<view>`), the
   same way. When the lambda views in `views/` are not the ones it runs, it is restarted
   without losing or doubling an event (`lambdalake speed restart`).
3. Each task waits until every task of its job runs, and logs what it did.

The keeper (`flink-keeper`) brings lost jobs back on its own; this DAG is the way to do it,
and to restart the speed job, from the Airflow UI.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import dag, task

from lambdalake.dag_defaults import dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    **dag_defaults(retries=1),
    schedule=None,
    tags=["lambdalake", "speed"],
)
def speed_layer() -> None:
    @task
    def ingest() -> dict[str, str]:
        from lambdalake.config import load_config
        from lambdalake.speed_layer import bring_up_ingest

        return bring_up_ingest(load_config(), print)

    @task
    def speed() -> dict[str, str]:
        from lambdalake.config import load_config
        from lambdalake.speed_layer import bring_up_speed

        return bring_up_speed(load_config(), print)

    # at once: each submission is a `flink run` of ~10 s, and the jobs are independent (the speed
    # job reads Kafka, not the master dataset)
    ingest()
    speed()


speed_layer()
