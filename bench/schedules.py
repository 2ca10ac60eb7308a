"""Benchmarks run with Airflow's schedules paused: a scheduled DAG run shares the machine with what
is measured (after a test run, the hourly `iceberg_maintenance` compacts every table the tests
left, for minutes, on both cores)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow, AirflowApi


def set_paused(api: AirflowApi, dag_ids: list[str], paused: bool) -> None:
    for dag_id in dag_ids:
        api.client.patch(f"/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()


@contextmanager
def schedules_paused(config: Config, wait_seconds: float = 1800) -> Iterator[list[str]]:
    """Pause every unpaused DAG that has a schedule, wait (up to wait_seconds) for the DAG runs in
    progress to end, and yield the paused DAGs' ids; unpause exactly those afterwards. Nothing is
    paused when Airflow does not answer: the benchmark then runs anyway, and prints that what ran
    meanwhile is unknown.

    Airflow schedules no task of a paused DAG's run, so a run in progress would never end: while
    waiting, the DAGs of the runs in progress are unpaused, and paused again between looks."""
    try:
        api = AirflowApi(Airflow(config))
        dags = api.client.get("/dags", params={"paused": False, "limit": 100}).json()["dags"]
    except Exception as error:  # noqa: BLE001 - the benchmark runs anyway, and says so
        print(f"Airflow's schedules: unknown, not paused ({error})")
        yield []
        return
    paused = [dag["dag_id"] for dag in dags if dag.get("timetable_summary")]
    set_paused(api, paused, True)
    try:
        print(f"paused Airflow's schedules for the benchmark: {', '.join(paused) or 'none was unpaused'}")
        deadline = time.monotonic() + wait_seconds
        while runs := api.client.get("/dags/~/dagRuns", params={"state": "running", "limit": 100}).json()["dag_runs"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAG runs still running after {wait_seconds:.0f}s: "
                                   f"{[(r['dag_id'], r['dag_run_id']) for r in runs]}; mark them failed in "
                                   "Airflow's UI, or wait, then run the benchmark again")
            running = sorted({r["dag_id"] for r in runs})
            print(f"waiting for DAG runs to end: {running}")
            set_paused(api, running, False)
            try:
                time.sleep(15)
            finally:
                set_paused(api, running, True)
        yield paused
    finally:
        set_paused(api, paused, False)
