"""Bring the speed layer's jobs up from wherever they are: what the `speed_layer` DAG runs.

The ingest job and the shared speed job each end up running, from their latest state:
- live: left as it is;
- recorded in the state store but not live (a user stopped it with a savepoint, or it was lost):
  expected again, and resubmitted by the keeper's own pass (lambdalake.keeper.reconcile), from
  that savepoint or its newest retained checkpoint;
- never submitted: submitted, from the group's committed offsets.

When the lambda views in views/ are not the ones the live speed job runs, it is restarted
through lambdalake.speed.restart, which loses and doubles nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from lambdalake import jobs, keeper, state
from lambdalake.config import Config
from lambdalake.errors import EngineError
from lambdalake.ingest import IngestTarget
from lambdalake.ingest import start as start_ingest
from lambdalake.speed import SpeedTarget, ensure_speed_tables, restart
from lambdalake.speed import start as start_speed


def ensure_running(config: Config, name: str, submit: Callable[[], str | None], say: Callable[[str], None]) -> None:
    """Make the job named `name` run from its latest state (see the module); `submit` starts it afresh."""
    live = jobs.live_jobs(config, name)
    if live:
        say(f"{name}: running as Flink job {live[0]}")
        return
    recorded = next((job for job in state.expected_jobs(config, all_jobs=True) if job.name == name), None)
    if recorded is None:
        job_id = submit()
        say(f"{name}: submitted as Flink job {job_id}" if job_id else f"{name}: nothing for it to run")
        return
    if recorded.restores >= keeper.MAX_RESTORES:
        raise EngineError(f"{name}: {recorded.restores} restores failed or ended before a checkpoint; see the Flink "
                          "UI for why, then `lambdalake ingest|speed start`")
    if not recorded.expected:
        state.set_expected(config, name, True)
    restored = keeper.reconcile(config, say)  # under the keeper's lock: the keeper program may be at it too
    if name not in restored and not jobs.live_jobs(config, name):
        raise EngineError(f"{name}: could not be resubmitted; `lambdalake status` says why")


def running_views(config: Config, name: str) -> list[str]:
    """The speed tables the job named `name` was submitted for (its recorded --views)."""
    recorded = next((job for job in state.expected_jobs(config, all_jobs=True) if job.name == name), None)
    if recorded is None or "--views" not in recorded.args:
        return []
    return sorted(item["table"] for item in json.loads(recorded.args[recorded.args.index("--views") + 1]))


def wait_running(config: Config, names: list[str], timeout: float = 300) -> dict[str, str]:
    """Wait until each job is RUNNING with every task running; return name -> Flink job id."""
    deadline = time.monotonic() + timeout
    while True:
        live = jobs.live_job_ids(config)
        found = {name: live[name] for name in names if name in live and jobs.every_task_running(config, name)}
        if len(found) == len(names):
            return found
        if time.monotonic() > deadline:
            raise EngineError(f"not running after {timeout:.0f}s: {sorted(set(names) - set(found))}; "
                              "see the Flink UI and `lambdalake status`")
        time.sleep(2)


def bring_up_ingest(config: Config, say: Callable[[str], None]) -> dict[str, str]:
    """The ingest job running from its latest state; returns its name -> Flink job id."""
    ingest = IngestTarget.default(config)
    ensure_running(config, ingest.job_name, lambda: start_ingest(config, ingest), say)
    return wait_running(config, [ingest.job_name])


def bring_up_speed(config: Config, say: Callable[[str], None]) -> dict[str, str]:
    """The shared speed job running from its latest state, restarted if the lambda views in views/
    are not the ones it runs; returns its name -> Flink job id (empty when no view is left for it)."""
    speed = SpeedTarget.default(config)
    ensure_running(config, speed.job_name, lambda: start_speed(config, speed), say)
    wanted = sorted(view["table"] for view in ensure_speed_tables(config, speed))
    current = running_views(config, speed.job_name)
    if wanted != current:
        say(f"{speed.job_name}: runs {current or 'nothing'}, views/ has {wanted or 'none'}: restarting it")
        job_id = restart(config, speed) if jobs.live_jobs(config, speed.job_name) else start_speed(config, speed)
        if job_id is None:
            say(f"{speed.job_name}: stopped, no lambda view is left for it")
            return {}
    return wait_running(config, [speed.job_name]) if wanted else {}
