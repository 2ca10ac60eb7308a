"""The keeper's choice of restore point, on a checkpoint directory laid out as Flink lays it out."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdalake.config import Config
from lambdalake.keeper import latest_checkpoint


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
    assert latest_checkpoint(config, "a" * 32) == newest


def test_no_checkpoint_means_no_restore_point(config: Config) -> None:
    assert latest_checkpoint(config, "b" * 32) is None
    checkpoint(config, "b" * 32, 1, complete=False)
    assert latest_checkpoint(config, "b" * 32) is None
