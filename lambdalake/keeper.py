"""The job keeper: every streaming job the platform runs comes back, with its state.

Every job submitted through lambdalake.jobs (ingest, the shared speed job, each version job) is
recorded in the state store (lambdalake.state) with what it takes to submit it again. The keeper,
a supervised program (`flink-keeper`, `python -m lambdalake.keeper`) and the last step of `up`,
resubmits each expected job that is not live on the cluster, from:
1. the savepoint `lambdalake down` took when it stopped the job, else
2. the newest checkpoint retained under the job's last Flink job id (jobs checkpoint every
   `[flink] checkpoint_interval`, and the cluster retains the latest one when a job is cancelled
   or its JobManager dies), else
3. nothing, for a job that never completed a checkpoint: nothing it read was committed, so
   starting it from its committed offsets again loses and doubles nothing.

So a JobManager that dies and is restarted by supervisord, `down` then `up`, and a host that
loses every process all end with every expected job running from its latest state. A job that
was restored `MAX_RESTORES` times without completing a checkpoint of its own is left alone and
shown as failing by `lambdalake status`. Once a restored job has a checkpoint of its own, the
checkpoint it was restored from is deleted (the first checkpoint after a restore is a full one,
Flink's default NO_CLAIM mode), so retained checkpoints stay bounded: the latest one per job.

Why a keeper and not Flink's ZooKeeper high availability: on one host there is one JobManager
to lose, and the platform must also bring jobs back after `down`/`up` and after a host restart,
which needs its own record of which jobs to run. The keeper restores from the same retained
checkpoints HA would, with no ZooKeeper to run and no second record of jobs to reconcile.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambdalake import jobs, state
from lambdalake.config import Config, load_config
from lambdalake.engines.flink import Flink
from lambdalake.errors import EngineError

MAX_RESTORES = 3
log = logging.getLogger("lambdalake.keeper")


def latest_checkpoint(config: Config, job_id: str) -> Path | None:
    """The newest complete checkpoint retained under a Flink job id."""
    job_dir = Flink(config).checkpoints_dir / job_id
    complete = [d for d in job_dir.glob("chk-*") if (d / "_metadata").exists()] if job_dir.is_dir() else []
    return max(complete, key=lambda d: int(d.name.split("-", 1)[1]), default=None)


def remove_checkpoints(config: Config, job_id: str | None) -> None:
    if job_id:
        shutil.rmtree(Flink(config).checkpoints_dir / job_id, ignore_errors=True)


def restore(config: Config, job: state.ExpectedJob) -> str:
    """Submit the job again from its latest state; return the new Flink job id."""
    savepoint = job.savepoint
    source = None
    if savepoint is None and (checkpoint := latest_checkpoint(config, job.job_id)) is not None:
        savepoint, source = f"file://{checkpoint}", job.job_id
    elif savepoint is None and job.restored_from and (checkpoint := latest_checkpoint(config, job.restored_from)):
        # restored before, but died before a checkpoint of its own: the older state still holds
        savepoint, source = f"file://{checkpoint}", job.restored_from
    job_id = jobs.submit_untracked(config, Path(job.script), job.args, job.name, parallelism=job.parallelism,
                                   savepoint=savepoint)
    state.restored(config, job.name, job_id, source)
    return job_id


@dataclass(frozen=True)
class JobStatus:
    name: str
    healthy: bool
    state: str
    detail: str


def _checkpointed(config: Config, job_id: str) -> bool:
    return latest_checkpoint(config, job_id) is not None


def reconcile(config: Config, say: Callable[[str], None] = log.info) -> list[str]:
    """One pass: restore every expected job that is not live; tidy restored ones. Returns what it restored.

    Runs under a PostgreSQL advisory lock, so `up` and the keeper program never both restore a job.
    """
    restored = []
    with state.connect(config) as lock:
        lock.execute("select pg_advisory_lock(hashtext('lambdalake keeper'))")
        try:
            live = jobs.live_job_ids(config)
            for job in state.expected_jobs(config):
                if job.name in live:
                    if job.restored_from and _checkpointed(config, live[job.name]):
                        remove_checkpoints(config, job.restored_from)
                        state.settled(config, job.name)
                    continue
                if job.restores >= MAX_RESTORES:
                    continue  # shown as failing by status; a user's start resets it
                say(f"{job.name}: not running; restoring it")
                try:
                    job_id = restore(config, job)
                except EngineError as exc:  # e.g. its savepoint was deleted: counted, shown by status
                    state.restore_failed(config, job.name)
                    say(f"{job.name}: could not be restored: {exc}")
                    continue
                restored.append(job.name)
                say(f"{job.name}: running again as Flink job {job_id}")
        finally:
            lock.execute("select pg_advisory_unlock(hashtext('lambdalake keeper'))")
    return restored


def job_statuses(config: Config) -> list[JobStatus]:
    """Each job the platform expects to run, and whether it does."""
    states = jobs.job_states(config)
    statuses = []
    for job in state.expected_jobs(config):
        current = states.get(job.name)
        if current == "RUNNING":
            statuses.append(JobStatus(job.name, True, current, f"Flink job {job.job_id}"))
        elif job.restores >= MAX_RESTORES:
            statuses.append(JobStatus(job.name, False, current or "MISSING",
                                      f"{job.restores} restores failed or ended before a checkpoint; see the "
                                      "Flink UI for why, then `lambdalake ingest|speed start` or `kappa reprocess`"))
        else:
            statuses.append(JobStatus(job.name, False, current or "MISSING",
                                      "restarting" if current else "not on the cluster; the keeper restores it"))
    return statuses


def suspend_all(config: Config, say: Callable[[str], None]) -> None:
    """Stop every expected live job with a savepoint, recorded so that `up` restores it (by `down`)."""
    live = jobs.live_job_ids(config)
    for job in state.expected_jobs(config):
        if job.name in live:
            path = jobs.stop_with_savepoint(config, job.name)
            state.suspended(config, job.name, path, expected=True)
            say(f"{job.name}: stopped with a savepoint at {path}")


def run(config: Config) -> None:
    """Reconcile for ever, every few seconds; an engine that is down is retried, never fatal."""
    flink = Flink(config)
    while True:
        try:
            if flink.health() is None:
                reconcile(config)
        except Exception:  # noqa: BLE001 - the cluster or PostgreSQL restarting: try again next time
            log.exception("keeper pass failed; retrying")
        time.sleep(5)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every request: what the program does
    run(load_config())
