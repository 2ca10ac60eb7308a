"""The Flink REST client's requests (method, path, query, body, timeout) and what it makes of the
answers, against an httpx.MockTransport: no cluster needed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.flink_rest import FlinkRest

Sent = list[httpx.Request]


def client(config: Config, answer: Callable[[httpx.Request], httpx.Response]) -> tuple[FlinkRest, Sent]:
    sent: Sent = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    return FlinkRest(config, transport=httpx.MockTransport(handle)), sent


def answering(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


def read_timeout(request: httpx.Request) -> float:
    return request.extensions["timeout"]["read"]


def test_reads_go_to_the_rest_endpoint_with_todays_timeouts(config: Config) -> None:
    base = Flink(config).rest_url
    rest, sent = client(config, answering({"jobs": [{"jid": "a"}], "vertices": [], "state": "RUNNING"}))
    assert rest.jobs_overview() == [{"jid": "a"}]
    assert rest.job("a")["state"] == "RUNNING"
    rest.job("a", timeout=30)
    assert [(r.method, str(r.url), read_timeout(r)) for r in sent] == [
        ("GET", f"{base}/jobs/overview", 10), ("GET", f"{base}/jobs/a", 10), ("GET", f"{base}/jobs/a", 30)]
    assert rest.ui_job_url("a") == f"{base}/#/job/running/a/overview"


def test_exceptions_are_the_history_entries_or_none(config: Config) -> None:
    entries = [{"exceptionName": "java.lang.RuntimeException", "timestamp": 1}]
    rest, sent = client(config, answering({"exceptionHistory": {"entries": entries}}))
    assert rest.exceptions("a") == entries
    assert sent[0].url.path == "/jobs/a/exceptions" and sent[0].url.params["maxExceptions"] == "20"
    assert client(config, answering({}))[0].exceptions("a") == []


def test_stop_with_savepoint_posts_the_directory_and_returns_the_trigger_id(config: Config) -> None:
    rest, sent = client(config, answering({"request-id": "t1"}))
    assert rest.stop_with_savepoint("a", "file:///sp", drain=True) == "t1"
    assert (sent[0].method, sent[0].url.path, read_timeout(sent[0])) == ("POST", "/jobs/a/stop", 30)
    assert json.loads(sent[0].content) == {"targetDirectory": "file:///sp", "drain": True}
    rest.savepoint_status("a", "t1")
    assert (sent[1].method, sent[1].url.path) == ("GET", "/jobs/a/savepoints/t1")


def test_cancel_patches_the_job_and_ignores_the_answer(config: Config) -> None:
    rest, sent = client(config, answering({"errors": ["gone"]}, status=404))
    rest.cancel("a")
    assert (sent[0].method, sent[0].url.path, sent[0].url.params["mode"]) == ("PATCH", "/jobs/a", "cancel")


def test_flamegraph_and_checkpoint_config(config: Config) -> None:
    rest, sent = client(config, answering({"interval": 10_000, "data": {}, "endTimestamp": 0}))
    assert rest.flamegraph("a", "v1")["endTimestamp"] == 0
    assert rest.checkpoint_config("a")["interval"] == 10_000
    assert (sent[0].url.path, sent[0].url.params["type"], read_timeout(sent[0])) == (
        "/jobs/a/vertices/v1/flamegraph", "on_cpu", 30)
    assert (sent[1].url.path, read_timeout(sent[1])) == ("/jobs/a/checkpoints/config", 3)


def test_only_the_checked_calls_raise_on_an_error_status(config: Config) -> None:
    rest, _ = client(config, answering({"errors": ["Job not found"]}, status=404))
    with pytest.raises(httpx.HTTPStatusError):
        rest.stop_with_savepoint("a", "file:///sp", drain=False)
    with pytest.raises(httpx.HTTPStatusError):
        rest.checkpoint_config("a")
    assert rest.job("a") == {"errors": ["Job not found"]}


def test_latest_checkpoint_and_summed_taskmanager_metrics(config: Config) -> None:
    rest, sent = client(config, answering({"latest": {"completed": {"id": 7, "state_size": 1024}}}))
    assert rest.latest_checkpoint("a") == {"id": 7, "state_size": 1024}
    assert sent[0].url.path == "/jobs/a/checkpoints"
    rest, _ = client(config, answering({"latest": {"completed": None}}))
    assert rest.latest_checkpoint("a") is None
    rest, sent = client(config, answering([{"id": "Status.JVM.Memory.Heap.Used", "sum": 5.0e8}]))
    assert rest.taskmanager_metrics(["Status.JVM.Memory.Heap.Used", "Status.Flink.Memory.Managed.Used"]) == {
        "Status.JVM.Memory.Heap.Used": 5.0e8}
    assert (sent[0].url.path, sent[0].url.params["agg"]) == ("/taskmanagers/metrics", "sum")
