"""Long-running PyFlink jobs on the session cluster: submit once by name, find, stop with a savepoint.

Every job submitted here is recorded in the state store as expected to run (lambdalake.state), so
that lambdalake.keeper brings it back after a JobManager loss, `down`/`up` or a host restart; a
job stopped or cancelled here is no longer expected.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from lambdalake import checkpoints
from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.errors import EngineError
from lambdalake.flink_rest import FlinkRest

#: Flink job states in which a job is, or is about to be, running
LIVE_STATES = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING"}


def live_jobs(config: Config, job_name: str) -> list[str]:
    """Ids of the cluster's live jobs named job_name."""
    return [job["jid"] for job in FlinkRest(config).jobs_overview()
            if job["name"] == job_name and job["state"] in LIVE_STATES]


def every_task_running(config: Config, job_name: str) -> bool:
    """Whether the live job named job_name runs every task (a RUNNING job may still be deploying)."""
    job_id = live_job_ids(config).get(job_name)
    if job_id is None:
        return False
    vertices = FlinkRest(config).job(job_id)["vertices"]
    return all(vertex["status"] == "RUNNING" for vertex in vertices)


def parse_settings(settings: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings (a bench's or a job's --setting) as a mapping; ValueError names a bad one."""
    parsed = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--setting {setting!r} is not KEY=VALUE; e.g. --setting 'execution.checkpointing.interval=2 s'")
        parsed[key.strip()] = value.strip()
    return parsed


def setting_args(settings: Mapping[str, str]) -> list[str]:
    """A job's `--setting KEY=VALUE` arguments (lambdalake.streaming.apply_settings reads them)."""
    return [arg for key, value in settings.items() for arg in ("--setting", f"{key}={value}")]


def submit(config: Config, job: Path, args: list[str], job_name: str, *, parallelism: int,
           savepoint: str | None = None) -> str:
    """Submit the job (detached) unless one named job_name is live; return its job id.

    The job is then expected to run: the keeper restores it whenever it is missing.
    """
    from lambdalake import state

    job_id = submit_untracked(config, job, args, job_name, parallelism=parallelism, savepoint=savepoint)
    state.expect(config, job_name, str(job), args, parallelism, job_id)
    return job_id


def submit_untracked(config: Config, job: Path, args: list[str], job_name: str, *, parallelism: int,
                     savepoint: str | None = None) -> str:
    """submit, without recording the job (the keeper records its restores itself)."""
    running = live_jobs(config, job_name)
    if running:
        return running[0]
    proc = Flink(config).run_python_job(job, *args, "--job-name", job_name, detached=True,
                                        parallelism=parallelism, savepoint=savepoint)
    match = re.search(r"JobID ([0-9a-f]{32})", proc.stdout)
    if not match:
        raise EngineError(f"flink run printed no job id:\n{proc.stdout[-2000:]}")
    return match.group(1)


def live_job_ids(config: Config) -> dict[str, str]:
    """Every live job's id, by name."""
    return {job["name"]: job["jid"] for job in FlinkRest(config).jobs_overview() if job["state"] in LIVE_STATES}


def job_states(config: Config) -> dict[str, str]:
    """Each job name's state on the cluster: a live job's, else its latest job's."""
    states: dict[str, tuple[bool, int, str]] = {}
    for job in FlinkRest(config).jobs_overview():
        rank = (job["state"] in LIVE_STATES, job["start-time"], job["state"])
        states[job["name"]] = max(states.get(job["name"], rank), rank)
    return {name: rank[2] for name, rank in states.items()}


def started_at(config: Config, job_name: str) -> datetime | None:
    """When the live job named job_name started (UTC); None when none is live."""
    starts = [job["start-time"] for job in FlinkRest(config).jobs_overview()
              if job["name"] == job_name and job["state"] in LIVE_STATES]
    return datetime.fromtimestamp(max(starts) / 1000, timezone.utc) if starts else None


def stop(config: Config, job_name: str, timeout: float = 180, *, drain: bool = False) -> str:
    """Stop the live job named job_name with a savepoint; return the savepoint's path.

    The job is no longer expected to run, until it is submitted again (from that savepoint).
    drain: first advance the watermark to the end of time, so that every window fires and every
    buffered row is emitted; the savepoint is then only good for a job that starts without it.
    """
    from lambdalake import state

    # first: between the job's end and the record of its savepoint, the keeper would see an
    # expected job missing and bring it back (from its committed offsets, without state)
    state.set_expected(config, job_name, False)
    try:
        path = stop_with_savepoint(config, job_name, timeout, drain=drain)
    except BaseException:
        if live_jobs(config, job_name):  # still running: the keeper keeps it again
            state.set_expected(config, job_name, True)
        raise
    state.suspended(config, job_name, path, expected=False)
    return path


def stop_with_savepoint(config: Config, job_name: str, timeout: float = 180, *, drain: bool = False) -> str:
    """Stop the live job named job_name with a savepoint; return the savepoint's path."""
    rest = FlinkRest(config)
    jobs = live_jobs(config, job_name)
    if not jobs:
        raise EngineError(f"no live Flink job named {job_name!r}")
    job_id = jobs[0]
    deadline = time.monotonic() + timeout
    _wait_deployed(rest, job_name, job_id, deadline)
    trigger_id = rest.stop_with_savepoint(job_id, checkpoints.savepoints_uri(config), drain=drain)
    while time.monotonic() < deadline:
        status = rest.savepoint_status(job_id, trigger_id)
        if status["status"]["id"] == "COMPLETED":
            operation = status["operation"]
            if "failure-cause" in operation:
                cause = operation["failure-cause"].get("stack-trace", "")[:2000]
                raise EngineError(f"stopping {job_name} failed: {cause}")
            _wait_terminal(rest, job_name, job_id, deadline)
            return operation["location"]
        time.sleep(1)
    raise EngineError(f"{job_name}: no savepoint after {timeout:.0f}s")


def _wait_deployed(rest: FlinkRest, job_name: str, job_id: str, deadline: float) -> None:
    """Wait until every task of the job runs. A job still deploying (just submitted, or restarting
    after a failure) cannot take a savepoint: Flink refuses the stop with "Not all required tasks
    are currently running", and a `stop` right after a `start` failed so."""
    while True:
        job = rest.job(job_id)
        pending = sorted({vertex["status"] for vertex in job["vertices"]} - {"RUNNING", "FINISHED"})
        if job["state"] == "RUNNING" and not pending:
            return
        if job["state"] not in LIVE_STATES:
            raise EngineError(f"{job_name} ({job_id}) is {job['state']}: there is no running job to stop")
        if time.monotonic() >= deadline:
            raise EngineError(f"{job_name} ({job_id}) is {job['state']} with tasks {', '.join(pending)}, "
                              "not all running: it cannot take a savepoint yet; see its exceptions in the Flink UI")
        time.sleep(0.5)


def _wait_terminal(rest: FlinkRest, job_name: str, job_id: str, deadline: float) -> None:
    """Wait until the stopped job has ended: its sinks commit the savepoint when notified of its
    completion, and whoever rewrites the job's tables next (lambdalake.speed.restart) must not
    race that last commit. (It had ended each time it was looked at; Flink does not promise it.)"""
    while time.monotonic() < deadline:
        state = rest.job(job_id)["state"]
        if state in ("FINISHED", "CANCELED", "FAILED"):
            return
        time.sleep(0.2)
    raise EngineError(f"{job_name} ({job_id}) took its savepoint but did not finish: see the Flink UI")


def remove_state(config: Config, ref: str | None) -> None:
    """Delete a job's state that nothing restores from any more (lambdalake.checkpoints.remove)."""
    checkpoints.remove(config, ref)


def cancel(config: Config, job_name: str) -> None:
    """Cancel every live job named job_name, without a savepoint, for good: it is no longer expected
    to run, and its retained checkpoints are deleted."""
    from lambdalake import state

    forgotten = state.forget(config, job_name)
    rest = FlinkRest(config)
    for job_id in live_jobs(config, job_name):
        rest.cancel(job_id)
    if forgotten is not None:
        # a savepoint of a job still expected was taken by `down`; one a user's `stop` took is theirs
        for ref in (forgotten.job_id, forgotten.restored_from, forgotten.savepoint if forgotten.expected else None):
            remove_state(config, ref)
