from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow, AirflowApi
from lambdalake.query import run_query
from lambdalake.views import load_views

#: platform_health fails while another test's job is expected but not running
pytestmark = pytest.mark.serial

DAG_ID = "platform_health"


def test_token_then_trigger_a_dag_that_reaches_success(config: Config) -> None:
    api = AirflowApi(Airflow(config))  # POST /auth/token, then bearer requests to /api/v2
    api.prepare_dag(DAG_ID)
    started = datetime.now(timezone.utc)
    run_id = api.trigger(DAG_ID)
    assert api.wait(DAG_ID, run_id, timeout=240) == "success"
    # what its `views` task measured is kept in the meta time series, a row per view, read here
    # through Trino as a user would
    _, rows = run_query(config, "select view, mode, target_seconds, measured_at from meta.view_freshness "
                                "where measured_at >= ? order by view", [started])
    # (a scheduled run may have measured them too meanwhile)
    assert {row[0] for row in rows} == {f"serving.{view.name}" for view in load_views()}, rows
    assert all(row[2] > 0 and row[1] in ("lambda", "kappa") for row in rows), rows
