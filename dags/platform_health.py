"""
### Platform health

Checks every lambdalake engine (PostgreSQL, Kafka, Flink, Trino, Airflow) from an Airflow
worker, the way `lambdalake status` does, and fails if any is unhealthy. Trigger it from the
UI to see, in the task log, each engine's health and endpoint.
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
    tags=["lambdalake", "platform"],
)
def platform_health() -> None:
    @task
    def check_engines() -> dict[str, str]:
        from lambdalake.config import load_config
        from lambdalake.platform import require_healthy

        return require_healthy(load_config())

    check_engines()


platform_health()
