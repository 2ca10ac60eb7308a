"""Long-running PyFlink jobs on the session cluster: submit once by name, find, stop with a savepoint."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.errors import ConfigError, EngineError

#: Flink job states in which a job is, or is about to be, running
LIVE_STATES = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(value: str, what: str) -> str:
    if not NAME.match(value):
        raise ConfigError(f"{what} {value!r} may only hold letters, digits, '.', '_' and '-'")
    return value


def live_jobs(config: Config, job_name: str) -> list[str]:
    """Ids of the cluster's live jobs named job_name."""
    overview = httpx.get(f"{Flink(config).rest_url}/jobs/overview", timeout=10).json()
    return [job["jid"] for job in overview["jobs"] if job["name"] == job_name and job["state"] in LIVE_STATES]


def submit(config: Config, job: Path, args: list[str], job_name: str, *, parallelism: int,
           savepoint: str | None = None) -> str:
    """Submit the job (detached) unless one named job_name is live; return its job id."""
    running = live_jobs(config, job_name)
    if running:
        return running[0]
    proc = Flink(config).run_python_job(job, *args, "--job-name", job_name, detached=True,
                                        parallelism=parallelism, savepoint=savepoint)
    match = re.search(r"JobID ([0-9a-f]{32})", proc.stdout)
    if not match:
        raise EngineError(f"flink run printed no job id:\n{proc.stdout[-2000:]}")
    return match.group(1)


def started_at(config: Config, job_name: str) -> datetime | None:
    """When the live job named job_name started (UTC); None when none is live."""
    overview = httpx.get(f"{Flink(config).rest_url}/jobs/overview", timeout=10).json()
    starts = [job["start-time"] for job in overview["jobs"] if job["name"] == job_name and job["state"] in LIVE_STATES]
    return datetime.fromtimestamp(max(starts) / 1000, timezone.utc) if starts else None


def stop(config: Config, job_name: str, timeout: float = 180, *, drain: bool = False) -> str:
    """Stop the live job named job_name with a savepoint; return the savepoint's path.

    drain: first advance the watermark to the end of time, so that every window fires and every
    buffered row is emitted; the savepoint is then only good for a job that starts without it.
    """
    flink = Flink(config)
    jobs = live_jobs(config, job_name)
    if not jobs:
        raise EngineError(f"no live Flink job named {job_name!r}")
    job_id = jobs[0]
    trigger = httpx.post(f"{flink.rest_url}/jobs/{job_id}/stop", timeout=30,
                         json={"targetDirectory": f"file://{flink.savepoints_dir}", "drain": drain})
    trigger.raise_for_status()
    trigger_id = trigger.json()["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{flink.rest_url}/jobs/{job_id}/savepoints/{trigger_id}", timeout=10).json()
        if status["status"]["id"] == "COMPLETED":
            operation = status["operation"]
            if "failure-cause" in operation:
                cause = operation["failure-cause"].get("stack-trace", "")[:2000]
                raise EngineError(f"stopping {job_name} failed: {cause}")
            return operation["location"]
        time.sleep(1)
    raise EngineError(f"{job_name}: no savepoint after {timeout:.0f}s")


def cancel(config: Config, job_name: str) -> None:
    """Cancel every live job named job_name, without a savepoint."""
    for job_id in live_jobs(config, job_name):
        httpx.patch(f"{Flink(config).rest_url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
