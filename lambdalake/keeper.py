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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lambdalake import jobs, state
from lambdalake.checkpoints import is_location, latest_checkpoint
from lambdalake.config import Config, load_config
from lambdalake.engines.flink import Flink
from lambdalake.errors import EngineError
from lambdalake.flink_rest import FlinkRest

MAX_RESTORES = 3
#: a job that failed this many times within LOOP_WINDOW_SECONDS is shown as restarting in a loop
LOOP_FAILURES = 3
LOOP_WINDOW_SECONDS = 600
log = logging.getLogger("lambdalake.keeper")


def restore_point(config: Config, job: state.ExpectedJob) -> str | None:
    """Where the job's next submission starts from: the savepoint `down` took, else the newest
    checkpoint retained under its last job id, else (restored before, but lost before a checkpoint
    of its own) what that restore started from; None for a job that never completed a checkpoint."""
    if job.savepoint is not None:
        return job.savepoint
    if latest_checkpoint(config, job.job_id) is not None:
        return job.job_id
    if job.restored_from and is_location(job.restored_from):
        return job.restored_from
    if job.restored_from and latest_checkpoint(config, job.restored_from) is not None:
        return job.restored_from
    return None


def restore(config: Config, job: state.ExpectedJob) -> str:
    """Submit the job again from its latest state; return the new Flink job id."""
    source = restore_point(config, job)
    savepoint = source if source is None or is_location(source) else latest_checkpoint(config, source)
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

    The missing jobs are submitted at once, each by its own `flink run` client: most of a
    submission is the client starting and building the job graph, so a JobManager loss with three
    jobs costs one submission's time, not three. Runs under a PostgreSQL advisory lock, so `up`
    and the keeper program never both restore a job.
    """
    with state.connect(config) as lock:
        lock.execute("select pg_advisory_lock(hashtext('lambdalake keeper'))")
        try:
            live = jobs.live_job_ids(config)
            missing = []
            for job in state.expected_jobs(config):
                if job.name in live:
                    if job.restored_from and _checkpointed(config, live[job.name]):
                        jobs.remove_state(config, job.restored_from)
                        state.settled(config, job.name)
                elif job.restores < MAX_RESTORES:  # else shown as failing by status; a user's start resets it
                    say(f"{job.name}: not running; restoring it")
                    missing.append(job)
            with ThreadPoolExecutor(max_workers=max(len(missing), 1)) as pool:
                outcomes = list(pool.map(lambda job: _restore_one(config, job, say), missing))
            return [job.name for job, restored in zip(missing, outcomes, strict=True) if restored]
        finally:
            lock.execute("select pg_advisory_unlock(hashtext('lambdalake keeper'))")


def _restore_one(config: Config, job: state.ExpectedJob, say: Callable[[str], None]) -> bool:
    try:
        job_id = restore(config, job)
    except EngineError as exc:  # e.g. its savepoint was deleted: counted, shown by status
        state.restore_failed(config, job.name)
        say(f"{job.name}: could not be restored: {exc}")
        return False
    say(f"{job.name}: running again as Flink job {job_id}")
    return True


def recent_failures(config: Config, job_id: str, now: float) -> list[str]:
    """The exceptions that failed (and restarted) the job in the last LOOP_WINDOW_SECONDS, newest first."""
    history = FlinkRest(config).exceptions(job_id, max_exceptions=20)
    return [entry["exceptionName"] for entry in sorted(history, key=lambda e: -e["timestamp"])
            if now - entry["timestamp"] / 1000 <= LOOP_WINDOW_SECONDS]


def judge(name: str, job_id: str | None, current: str | None, restores: int, failures: list[str]) -> JobStatus:
    """Whether an expected job is healthy: running, and not restarting in a loop (Flink's restart
    strategy retries a failing job for ever, so a job that fails every minute is RUNNING most of the
    time), nor given up on by the keeper."""
    if restores >= MAX_RESTORES and current != "RUNNING":
        return JobStatus(name, False, current or "MISSING",
                         f"{restores} restores failed or ended before a checkpoint; see the Flink UI for why, then "
                         "`lambdalake ingest|speed start` or `kappa reprocess`")
    if current is None:
        return JobStatus(name, False, "MISSING", "not on the cluster; the keeper restores it")
    if len(failures) >= LOOP_FAILURES:
        return JobStatus(name, False, current,
                         f"restarting in a loop: {len(failures)} failures in the last {LOOP_WINDOW_SECONDS // 60} "
                         f"min, the latest {failures[0]}; see the job's Exceptions tab in the Flink UI")
    if current != "RUNNING":
        return JobStatus(name, False, current, "restarting" if current in jobs.LIVE_STATES else
                         "ended; the keeper restores it")
    return JobStatus(name, True, current, f"Flink job {job_id}")


def job_statuses(config: Config) -> list[JobStatus]:
    """Each job the platform expects to run, and whether it does (judge)."""
    states, live, now = jobs.job_states(config), jobs.live_job_ids(config), time.time()
    statuses = []
    for job in state.expected_jobs(config):
        job_id = live.get(job.name)
        failures = recent_failures(config, job_id, now) if job_id else []
        statuses.append(judge(job.name, job_id, states.get(job.name), job.restores, failures))
    return statuses


def suspend_all(config: Config, say: Callable[[str], None]) -> None:
    """Stop every expected live job with a savepoint, recorded so that `up` restores it (by `down`).

    The savepoints are taken at once: one after another they made `down` wait for each job's
    state in turn. Raises EngineError naming the jobs that could not be stopped (they resume from
    their latest retained checkpoint), after recording the others.
    """
    live = jobs.live_job_ids(config)
    names = [job.name for job in state.expected_jobs(config) if job.name in live]
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        stops = {name: pool.submit(jobs.stop_with_savepoint, config, name) for name in names}
        for name, stop in stops.items():
            try:
                path = stop.result()
            except EngineError as exc:
                failed.append(f"{name}: {exc}")
                continue
            state.suspended(config, name, path, expected=True)
            say(f"{name}: stopped with a savepoint at {path}")
    if failed:
        raise EngineError("; ".join(failed))


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
