"""The keeper's choice of restore point, on a checkpoint directory laid out as Flink lays it out;
what it deletes once a restored job has a checkpoint of its own; how status judges a job."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdalake.config import Config
from lambdalake.jobs import remove_state
from lambdalake.keeper import MAX_RESTORES, judge, latest_checkpoint, restore_point
from lambdalake.state import ExpectedJob


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("LAMBDALAKE__PATHS__DATA_DIR", str(tmp_path))
    from lambdalake.config import load_config

    return load_config()


def checkpoint(config: Config, job_id: str, number: int, complete: bool = True) -> Path:
    path = config.data_dir / "flink" / "checkpoints" / job_id / f"chk-{number}"
    path.mkdir(parents=True)
    if complete:
        (path / "_metadata").write_bytes(b"x")
    return path


def test_the_newest_complete_checkpoint_by_number_not_by_name(config: Config) -> None:
    checkpoint(config, "a" * 32, 9)
    newest = checkpoint(config, "a" * 32, 10)
    checkpoint(config, "a" * 32, 11, complete=False)  # being written when the JobManager died
    assert latest_checkpoint(config, "a" * 32) == f"file://{newest}"


def test_no_checkpoint_means_no_restore_point(config: Config) -> None:
    assert latest_checkpoint(config, "b" * 32) is None
    checkpoint(config, "b" * 32, 1, complete=False)
    assert latest_checkpoint(config, "b" * 32) is None


def expected(job_id: str, *, savepoint: str | None = None, restored_from: str | None = None) -> ExpectedJob:
    return ExpectedJob("lambdalake-speed", "speed_job.py", [], 1, True, job_id, savepoint, restored_from, 0)


def test_a_down_savepoint_comes_first_then_the_checkpoint_then_what_the_last_restore_used(config: Config) -> None:
    savepoint = f"file://{config.data_dir}/flink/savepoints/savepoint-1"
    checkpoint(config, "c" * 32, 3)
    assert restore_point(config, expected("c" * 32, savepoint=savepoint)) == savepoint
    assert restore_point(config, expected("c" * 32)) == "c" * 32
    # restored from down's savepoint, then lost before a checkpoint of its own: that savepoint again
    assert restore_point(config, expected("d" * 32, restored_from=savepoint)) == savepoint
    assert restore_point(config, expected("d" * 32, restored_from="c" * 32)) == "c" * 32
    assert restore_point(config, expected("d" * 32)) is None


def test_only_state_nothing_restores_from_is_deleted(config: Config, tmp_path: Path) -> None:
    kept = checkpoint(config, "e" * 32, 1)
    old = checkpoint(config, "f" * 32, 1)
    savepoint = config.data_dir / "flink" / "savepoints" / "savepoint-2"
    savepoint.mkdir(parents=True)
    users = tmp_path / "elsewhere" / "savepoint-3"  # given with `--savepoint`: the user's
    users.mkdir(parents=True)
    for ref in ("f" * 32, f"file://{savepoint}", f"file://{users}", None):
        remove_state(config, ref)
    assert kept.exists() and not old.exists() and not savepoint.exists() and users.exists()
    assert (config.data_dir / "flink" / "savepoints").exists()


def test_a_job_failing_over_and_over_is_unhealthy_while_it_runs() -> None:
    job = "a" * 32
    assert judge("ingest", job, "RUNNING", 0, []).healthy
    assert judge("ingest", job, "RUNNING", 0, ["java.io.IOException"] * 2).healthy
    looping = judge("ingest", job, "RUNNING", 0, ["org.apache.kafka.common.KafkaException", "java.io.IOException",
                                                  "java.io.IOException"])
    assert not looping.healthy and "restarting in a loop: 3 failures" in looping.detail
    assert "KafkaException" in looping.detail
    assert not judge("ingest", job, "RESTARTING", 0, []).healthy
    missing = judge("ingest", None, None, 0, [])
    assert (missing.healthy, missing.state) == (False, "MISSING")
    given_up = judge("ingest", None, "FAILED", MAX_RESTORES, [])
    assert not given_up.healthy and "restores failed" in given_up.detail
