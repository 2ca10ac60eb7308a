from __future__ import annotations

from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow, AirflowApi

DAG_ID = "platform_health"


def test_token_then_trigger_a_dag_that_reaches_success(config: Config) -> None:
    api = AirflowApi(Airflow(config))  # POST /auth/token, then bearer requests to /api/v2
    api.prepare_dag(DAG_ID)
    run_id = api.trigger(DAG_ID)
    assert api.wait(DAG_ID, run_id, timeout=240) == "success"
