from __future__ import annotations

import time

import httpx

from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow

DAG_ID = "platform_health"


def test_token_then_trigger_a_dag_that_reaches_success(config: Config) -> None:
    airflow = Airflow(config)
    api = httpx.Client(base_url=f"{airflow.url}/api/v2", timeout=30,
                       headers={"Authorization": f"Bearer {airflow.token()}"})

    # the dag-processor may still be parsing the DAG folder right after `up`
    deadline = time.monotonic() + 120
    while api.get(f"/dags/{DAG_ID}").status_code == 404:
        assert time.monotonic() < deadline, f"{DAG_ID} never appeared in Airflow"
        time.sleep(3)
    api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()

    response = api.post(f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
    response.raise_for_status()
    run_id = response.json()["dag_run_id"]

    deadline = time.monotonic() + 240
    while (state := api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]) not in ("success", "failed"):
        assert time.monotonic() < deadline, f"run {run_id} still {state}"
        time.sleep(3)
    assert state == "success"
