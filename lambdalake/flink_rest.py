"""Flink's REST API, as the platform calls it: one method per call, nowhere else a Flink URL.

Every method makes one request to the session cluster's REST endpoint
(`lambdalake.engines.flink.Flink(config).rest_url`) and returns Flink's JSON, or the part of it
the callers use. Errors propagate, for the callers to retry (the keeper's next pass, a bench
polling through a JobManager restart): a cluster that does not answer raises
httpx.TransportError; the calls that check the HTTP status (said in their docstrings) raise
httpx.HTTPStatusError, the others read Flink's error body as an answer and fail with KeyError
(or a JSON error) where they or their caller look for a field that is not in it.

The engine's health probe is not here: it goes through lambdalake.engines.fetch_json, as every
engine's does.
"""

from __future__ import annotations

from typing import Any

import httpx

from lambdalake.config import Config
from lambdalake.engines.flink import Flink

#: seconds to wait for an answer: a busy JobManager takes a while; a trigger or a flame graph longer
TIMEOUT = 10
SLOW_TIMEOUT = 30


class FlinkRest:
    """The session cluster's REST API (https://nightlies.apache.org/flink/flink-docs-stable/docs/ops/rest_api/)."""

    def __init__(self, config: Config, *, transport: httpx.BaseTransport | None = None) -> None:
        """transport: for tests (httpx.MockTransport); None sends real requests."""
        self.url = Flink(config).rest_url
        self._transport = transport

    def _request(self, method: str, path: str, *, timeout: float, params: dict[str, Any] | None = None,
                 json: Any = None) -> httpx.Response:
        # a client per request, as httpx.get does: callers share one FlinkRest across threads
        with httpx.Client(transport=self._transport, timeout=timeout) as client:
            return client.request(method, f"{self.url}{path}", params=params, json=json)

    def ui_job_url(self, job_id: str) -> str:
        """The Flink UI's page of a running job (the UI is served at the REST endpoint)."""
        return f"{self.url}/#/job/running/{job_id}/overview"

    def jobs_overview(self) -> list[dict[str, Any]]:
        """GET /jobs/overview: every job the cluster knows, live or ended, each with its `jid`,
        `name`, `state` and `start-time` (epoch milliseconds)."""
        jobs: list[dict[str, Any]] = self._request("GET", "/jobs/overview", timeout=TIMEOUT).json()["jobs"]
        return jobs

    def job(self, job_id: str, *, timeout: float = TIMEOUT) -> dict[str, Any]:
        """GET /jobs/<id>: the job's detail, with its `state` and its `vertices` (each with its
        `id`, `name` and `status`)."""
        detail: dict[str, Any] = self._request("GET", f"/jobs/{job_id}", timeout=timeout).json()
        return detail

    def exceptions(self, job_id: str, max_exceptions: int = 20) -> list[dict[str, Any]]:
        """GET /jobs/<id>/exceptions: up to max_exceptions entries of the job's exception history
        (each with its `exceptionName` and `timestamp`, epoch milliseconds); empty when none."""
        history = self._request("GET", f"/jobs/{job_id}/exceptions", params={"maxExceptions": max_exceptions},
                                timeout=TIMEOUT).json()
        entries: list[dict[str, Any]] = history.get("exceptionHistory", {}).get("entries", [])
        return entries

    def checkpoint_config(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/<id>/checkpoints/config: the job's checkpointing settings (`interval` in
        milliseconds, ...). Raises httpx.HTTPStatusError unless Flink answers 2xx."""
        response = self._request("GET", f"/jobs/{job_id}/checkpoints/config", timeout=3)
        response.raise_for_status()
        settings: dict[str, Any] = response.json()
        return settings

    def latest_checkpoint(self, job_id: str) -> dict[str, Any] | None:
        """GET /jobs/<id>/checkpoints: the job's latest completed checkpoint (`id`, `state_size`:
        the full state in bytes, `checkpointed_size`: what this one wrote), or None before the first."""
        counts: dict[str, Any] = self._request("GET", f"/jobs/{job_id}/checkpoints", timeout=TIMEOUT).json()
        latest: dict[str, Any] | None = (counts.get("latest") or {}).get("completed")
        return latest

    def taskmanager_metrics(self, names: list[str]) -> dict[str, float]:
        """GET /taskmanagers/metrics?get=...&agg=sum: each named metric summed over every
        TaskManager (e.g. Status.JVM.Memory.Heap.Used); a metric no TaskManager reports is left out."""
        answer = self._request("GET", "/taskmanagers/metrics", params={"get": ",".join(names), "agg": "sum"},
                               timeout=TIMEOUT).json()
        return {metric["id"]: float(metric["sum"]) for metric in answer if "sum" in metric}

    def operator_records_in(self, job_id: str, operator: str) -> int:
        """Records that the job's operators whose name contains `operator` (e.g. PythonCorrelate)
        have taken in, summed over their subtasks: GET /jobs/<id>/vertices/<v>/metrics lists each
        subtask's `<i>.<operator>.numRecordsIn`, then ?get= reads them."""
        total = 0
        for vertex in self.job(job_id)["vertices"]:
            path = f"/jobs/{job_id}/vertices/{vertex['id']}/metrics"
            names = [m["id"] for m in self._request("GET", path, timeout=TIMEOUT).json()
                     if operator in m["id"] and m["id"].endswith(".numRecordsIn")]
            if names:
                values = self._request("GET", path, params={"get": ",".join(names)}, timeout=TIMEOUT).json()
                total += sum(int(float(metric["value"])) for metric in values)
        return total

    def stop_with_savepoint(self, job_id: str, target_directory: str, *, drain: bool) -> str:
        """POST /jobs/<id>/stop: trigger stopping the job with a savepoint into target_directory
        (a `file://` URI); return the trigger id to poll savepoint_status with. drain: advance the
        watermark to the end of time first. Raises httpx.HTTPStatusError unless Flink answers 2xx."""
        response = self._request("POST", f"/jobs/{job_id}/stop", timeout=SLOW_TIMEOUT,
                                 json={"targetDirectory": target_directory, "drain": drain})
        response.raise_for_status()
        trigger_id: str = response.json()["request-id"]
        return trigger_id

    def savepoint_status(self, job_id: str, trigger_id: str) -> dict[str, Any]:
        """GET /jobs/<id>/savepoints/<trigger id>: `status.id` (IN_PROGRESS, COMPLETED) and, once
        completed, `operation` with the savepoint's `location` or a `failure-cause`."""
        status: dict[str, Any] = self._request("GET", f"/jobs/{job_id}/savepoints/{trigger_id}",
                                               timeout=TIMEOUT).json()
        return status

    def cancel(self, job_id: str) -> None:
        """PATCH /jobs/<id>?mode=cancel: cancel the job, without a savepoint. Flink's answer is not
        checked (a job that ended meanwhile needs no cancelling)."""
        self._request("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"}, timeout=TIMEOUT)

    def flamegraph(self, job_id: str, vertex_id: str, kind: str = "on_cpu") -> dict[str, Any]:
        """GET /jobs/<id>/vertices/<vertex id>/flamegraph?type=kind (`rest.flamegraph.enabled`):
        the vertex's latest sampled stacks, `data` (a tree of `name`, `value`, `children`) and its
        `endTimestamp`; `data` is empty until Flink has sampled it."""
        graph: dict[str, Any] = self._request("GET", f"/jobs/{job_id}/vertices/{vertex_id}/flamegraph",
                                              params={"type": kind}, timeout=SLOW_TIMEOUT).json()
        return graph
