from __future__ import annotations

import re

import httpx

from lambdalake.config import Config
from lambdalake.engines.flink import LAKE_SQL_JOB, Flink


def test_rest_overview_shows_a_taskmanager_with_slots(config: Config) -> None:
    overview = httpx.get(f"http://{config.host}:{config.flink.rest_port}/overview", timeout=10).json()
    assert overview["taskmanagers"] >= 1
    assert overview["slots-total"] >= config.flink.task_slots
    assert overview["flink-version"] == "2.1.3"


def test_pyflink_job_submitted_with_flink_run_reaches_finished(config: Config) -> None:
    flink = Flink(config)
    proc = flink.run_python_job(LAKE_SQL_JOB, "SELECT x * 2 AS doubled FROM (VALUES (1), (2), (3)) AS t(x)")
    job_id = re.search(r"JobID ([0-9a-f]{32})", proc.stdout)
    assert job_id, proc.stdout
    job = httpx.get(f"{flink.rest_url}/jobs/{job_id.group(1)}", timeout=10).json()
    assert job["state"] == "FINISHED"
    rows = sorted(line for line in proc.stdout.splitlines() if line.startswith('{"row"'))
    assert rows == ['{"row": [2]}', '{"row": [4]}', '{"row": [6]}']
