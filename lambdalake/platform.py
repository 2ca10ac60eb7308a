"""Start, stop and inspect the whole platform: `lambdalake up`, `down` and `status`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lambdalake.config import Config
from lambdalake.engines import Engine, all_engines
from lambdalake.errors import EngineError
from lambdalake.install import check_installed
from lambdalake.supervisor import Supervisor

Progress = Callable[[str], None]
#: supervisord states meaning a program gave up; waiting longer will not help
FAILED_STATES = {"FATAL", "EXITED", "STOPPED", "UNKNOWN", "NOT RUNNING"}


@dataclass(frozen=True)
class EngineStatus:
    name: str
    healthy: bool
    endpoint: str
    detail: str
    programs: dict[str, str]


def _wait_healthy(engine: Engine, supervisor: Supervisor, timeout: float, progress: Progress) -> None:
    started = time.monotonic()
    last_report = started
    while True:
        reason = engine.health()
        if reason is None:
            return
        for program in engine.program_names:
            state = supervisor.state(program)
            if state in FAILED_STATES:
                raise EngineError(f"{engine.name}: {program} is {state}: {reason}\n"
                                  f"--- last lines of {supervisor.log_file(program)} ---\n"
                                  f"{supervisor.log_tail(program)}")
        now = time.monotonic()
        if now - started > timeout:
            tails = "\n".join(f"--- last lines of {supervisor.log_file(p)} ---\n{supervisor.log_tail(p)}"
                              for p in engine.program_names)
            raise EngineError(f"{engine.name}: not healthy after {timeout:.0f}s: {reason}\n{tails}")
        if now - last_report > 15:
            progress(f"  {engine.name}: waiting ({now - started:.0f}s): {reason}")
            last_report = now
        time.sleep(1)


def up(config: Config, progress: Progress) -> None:
    """Start every engine and wait for each to be healthy. Idempotent.

    PostgreSQL (and the cluster profile's object store) come first: they hold the Iceberg catalog,
    the warehouse and Airflow's metadata, which the others read as they start. The rest then start together, and each is waited for and initialized in
    start order (each may use the ones before it). Started one by one they took 86 s from a fresh
    data dir, mostly JVMs warming up on a core the previous one had left idle.
    """
    check_installed(config)
    engines = all_engines(config)
    supervisor = Supervisor(config)
    taken = supervisor.strangers()
    if taken:
        raise EngineError("another process listens where the platform would: "
                          + "; ".join(f"{key}: {held}" for key, held in taken)
                          + ". Stop it, or give the platform another port: "
                          + ", ".join(dict.fromkeys(f"{key} (LAMBDALAKE__{key.replace('.', '__').upper()})"
                                                    for key, _ in taken)))
    supervisor.render(program for engine in engines for program in engine.programs())
    supervisor.ensure_running()
    started = time.monotonic()
    for batch in ([e for e in engines if e.storage], [e for e in engines if not e.storage]):
        for engine in batch:
            progress(f"{engine.name}: starting")
            engine.prepare()
            for program in engine.program_names:
                supervisor.start(program)
        for engine in batch:
            _wait_healthy(engine, supervisor, config.start_timeout, progress)
            engine.initialize()
            progress(f"{engine.name}: healthy {time.monotonic() - started:.0f}s into `up`, at {engine.endpoint()}")
    # the jobs that ran before `down` (or a crash): the keeper program restores them too, but `up`
    # returns only once they are back
    from lambdalake.keeper import reconcile
    from lambdalake.serving import reconcile_all

    for name, error in reconcile_all(config):  # a serving step a crash left pending
        progress(f"{name}: finished the step a crash left pending" if error is None else
                 f"{name}: the step a crash left pending failed, and it serves what it served before: {error}")
    reconcile(config, progress)


def status(config: Config) -> list[EngineStatus]:
    supervisor = Supervisor(config)
    report = []
    for engine in all_engines(config):
        programs = {name: supervisor.state(name) for name in engine.program_names}
        reason = engine.health()
        stopped = [name for name, state in programs.items() if state != "RUNNING"]
        if reason is None and stopped:
            reason = f"answers, but not supervised here: {', '.join(stopped)}"
        report.append(EngineStatus(engine.name, reason is None, engine.endpoint(), reason or "ok", programs))
    return report


def _suspend_jobs(config: Config, supervisor: Supervisor, progress: Progress) -> None:
    """Stop the platform's jobs with savepoints, for `up` to restore them from (the keeper first, so
    that it does not bring them back meanwhile). Without a healthy Flink or PostgreSQL, the jobs
    come back from their latest retained checkpoints instead."""
    from lambdalake.engines.flink import Flink
    from lambdalake.engines.postgres import Postgres
    from lambdalake.keeper import suspend_all

    supervisor.stop("flink-keeper")
    if Flink(config).health() is not None or Postgres(config).health() is not None:
        progress("flink or postgres is not healthy: jobs will resume from their latest checkpoints")
        return
    try:
        suspend_all(config, progress)
    except EngineError as exc:
        progress(f"a job could not be stopped with a savepoint ({exc}); it resumes from its latest checkpoint")


def job_status(config: Config, engines: list[EngineStatus]):  # type: ignore[no-untyped-def]
    """The jobs the platform expects to run (lambdalake.keeper.JobStatus), once Flink and PostgreSQL answer."""
    from lambdalake.keeper import job_statuses

    healthy = {s.name for s in engines if s.healthy}
    return job_statuses(config) if {"postgres", "flink"} <= healthy else []


def down(config: Config, progress: Progress) -> list[str]:
    """Stop every engine and supervisord; end anything left behind. Returns what had to be swept."""
    supervisor = Supervisor(config)
    if supervisor.is_running():
        _suspend_jobs(config, supervisor, progress)
        progress("stopping every engine")
        # engines in reverse start order, each in its own stop order; then supervisord itself
        for engine in reversed(all_engines(config)):
            for batch in engine.stop_order():
                supervisor.stop_together(batch, timeout=90)
        supervisor.shutdown()
    swept = supervisor.sweep()
    for line in swept:
        progress(f"ended leftover process {line}")
    return swept


def require_healthy(config: Config) -> dict[str, str]:
    """Each engine's endpoint, or EngineError naming every engine that is not healthy."""
    report = status(config)
    down_engines = [f"{s.name} ({s.detail})" for s in report if not s.healthy]
    if down_engines:
        raise EngineError(f"not healthy: {'; '.join(down_engines)}")
    return {s.name: s.endpoint for s in report}
