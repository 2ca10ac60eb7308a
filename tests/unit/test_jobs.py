"""lambdalake.jobs against Flink's REST answers (an httpx.MockTransport): no cluster needed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lambdalake import jobs
from lambdalake.config import Config
from lambdalake.errors import EngineError
from tests.unit.test_flink_rest import client


def job(state: str, *statuses: str) -> dict[str, Any]:
    return {"state": state, "vertices": [{"status": status} for status in statuses]}


def answers(*bodies: dict[str, Any]) -> Iterator[httpx.Response]:
    yield from (httpx.Response(200, json=body) for body in bodies)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.time, "sleep", lambda seconds: None)


def test_a_stop_waits_until_every_task_of_a_deploying_job_runs(config: Config) -> None:
    # Flink refuses a savepoint while a task is not running ("Not all required tasks are currently running")
    replies = answers(job("INITIALIZING"), job("RUNNING", "RUNNING", "DEPLOYING"),
                      job("RUNNING", "RUNNING", "INITIALIZING"), job("RUNNING", "RUNNING", "RUNNING"))
    rest, sent = client(config, lambda request: next(replies))
    jobs._wait_deployed(rest, "lambdalake-ingest", "a", time.monotonic() + 60)
    assert [r.url.path for r in sent] == ["/jobs/a"] * 4


def test_a_job_whose_tasks_finished_can_stop(config: Config) -> None:
    rest, sent = client(config, lambda request: httpx.Response(200, json=job("RUNNING", "FINISHED", "RUNNING")))
    jobs._wait_deployed(rest, "lambdalake-ingest", "a", time.monotonic() + 60)
    assert len(sent) == 1


def test_a_job_that_ended_or_never_deploys_is_an_error_naming_its_state(config: Config) -> None:
    rest, _ = client(config, lambda request: httpx.Response(200, json=job("CANCELED", "CANCELED")))
    with pytest.raises(EngineError, match=r"lambdalake-ingest \(a\) is CANCELED: there is no running job to stop"):
        jobs._wait_deployed(rest, "lambdalake-ingest", "a", time.monotonic() + 60)
    rest, _ = client(config, lambda request: httpx.Response(200, json=job("RESTARTING", "CANCELING", "SCHEDULED")))
    with pytest.raises(EngineError, match="is RESTARTING with tasks CANCELING, SCHEDULED, not all running"):
        jobs._wait_deployed(rest, "lambdalake-ingest", "a", time.monotonic() - 1)
