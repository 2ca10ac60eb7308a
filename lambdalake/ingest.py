"""Run the ingest job (flink_jobs/ingest.py) on the Flink session cluster: start, find, stop.

`start` creates the two raw tables (declared in iceberg/tables.yaml) before submitting, since
Flink only writes them. `stop` stops the job with a savepoint, from which `start` can resume
exactly where it left off.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import httpx

from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.engines.flink import Flink
from lambdalake.errors import ConfigError, EngineError
from lambdalake.tables import checked_table_name, ensure_table

INGEST_JOB = PROJECT_ROOT / "flink_jobs" / "ingest.py"
#: Flink job states in which a job is, or is about to be, running
LIVE_STATES = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class IngestTarget:
    """Where one ingest job reads and writes. The default is the platform's own."""

    topic: str
    group_id: str
    events_table: str
    rejected_table: str
    job_name: str

    @classmethod
    def default(cls, config: Config) -> IngestTarget:
        return cls(config.kafka.events_topic, config.ingest.group_id, "raw.events", "raw.events_rejected",
                   config.ingest.job_name)

    def __post_init__(self) -> None:
        for value in (self.topic, self.group_id, self.job_name):
            if not _NAME.match(value):
                raise ConfigError(f"{value!r} is not a valid topic, group or job name "
                                  "(letters, digits, '.', '_', '-')")
        checked_table_name(self.events_table)
        checked_table_name(self.rejected_table)


def live_jobs(config: Config, job_name: str) -> list[str]:
    """Ids of the cluster's live jobs named job_name."""
    overview = httpx.get(f"{Flink(config).rest_url}/jobs/overview", timeout=10).json()
    return [job["jid"] for job in overview["jobs"] if job["name"] == job_name and job["state"] in LIVE_STATES]


def start(config: Config, target: IngestTarget, *, parallelism: int | None = None,
          savepoint: str | None = None) -> str:
    """Submit the job (detached) unless one of that name is live; return its job id."""
    running = live_jobs(config, target.job_name)
    if running:
        return running[0]
    ensure_table(config, "raw.events", target.events_table)
    ensure_table(config, "raw.events_rejected", target.rejected_table)
    proc = Flink(config).run_python_job(
        INGEST_JOB, "--topic", target.topic, "--group-id", target.group_id, "--events-table", target.events_table,
        "--rejected-table", target.rejected_table, "--job-name", target.job_name,
        detached=True, parallelism=parallelism or config.ingest.parallelism, savepoint=savepoint)
    match = re.search(r"JobID ([0-9a-f]{32})", proc.stdout)
    if not match:
        raise EngineError(f"flink run printed no job id:\n{proc.stdout[-2000:]}")
    return match.group(1)


def stop(config: Config, job_name: str, timeout: float = 180) -> str:
    """Stop the live job named job_name with a savepoint; return the savepoint's path."""
    flink = Flink(config)
    jobs = live_jobs(config, job_name)
    if not jobs:
        raise EngineError(f"no live Flink job named {job_name!r}: see `lambdalake ingest status`")
    job_id = jobs[0]
    trigger = httpx.post(f"{flink.rest_url}/jobs/{job_id}/stop", timeout=30,
                         json={"targetDirectory": f"file://{flink.savepoints_dir}", "drain": False})
    trigger.raise_for_status()
    trigger_id = trigger.json()["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{flink.rest_url}/jobs/{job_id}/savepoints/{trigger_id}", timeout=10).json()
        if status["status"]["id"] == "COMPLETED":
            operation = status["operation"]
            if "failure-cause" in operation:
                raise EngineError(f"stopping {job_name} failed: {operation['failure-cause'].get('stack-trace', '')[:2000]}")
            return operation["location"]
        time.sleep(1)
    raise EngineError(f"{job_name}: no savepoint after {timeout:.0f}s")
