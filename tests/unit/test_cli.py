from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lambdalake.cli import app

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nothing_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose engines are certainly not running: fresh data dir, unused ports."""
    monkeypatch.setenv("LAMBDALAKE__PATHS__DATA_DIR", str(tmp_path))
    for key in ("POSTGRES__PORT", "KAFKA__PORT", "KAFKA__CONTROLLER_PORT", "FLINK__REST_PORT", "TRINO__PORT",
                "AIRFLOW__PORT"):  # every port `down` sweeps: another checkout's engines may hold these
        monkeypatch.setenv(f"LAMBDALAKE__{key}", str(free_port()))
    return tmp_path


def test_config_prints_effective_values_with_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDALAKE__TRINO__PORT", "18080")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["trino"]["port"] == 18080


def test_status_exits_1_and_says_down_when_nothing_runs(nothing_running: Path) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["postgres", "kafka", "flink", "trino", "airflow"]
    assert all(line.split()[1] == "DOWN" for line in lines)


def test_status_json_lists_engine_health_and_endpoint(nothing_running: Path) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert {r["name"] for r in report} == {"postgres", "kafka", "flink", "trino", "airflow"}
    assert all(r["healthy"] is False and r["endpoint"].count("127.0.0.1") == 1 for r in report)


def test_down_with_nothing_running_is_a_no_op(nothing_running: Path) -> None:
    result = runner.invoke(app, ["down"])
    assert result.exit_code == 0, result.output
    assert "stopped" in result.output


def test_errors_are_one_plain_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[kafka]\nport = 'nine'\n")
    proc = subprocess.run([sys.executable, "-c", "from lambdalake.cli import main; main()", "config"],
                          capture_output=True, text=True, env={"LAMBDALAKE_CONFIG": str(bad), "PATH": ""})
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: kafka.port = 'nine' is not a valid int"
    assert "Traceback" not in proc.stderr


def test_views_says_which_views_need_lambda() -> None:
    result = runner.invoke(app, ["views"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    verdicts = {line.split(" ", 1)[0]: lines[i + 1] for i, line in enumerate(lines) if not line.startswith(" ")}
    assert "Lambda earns its keep" in verdicts["visitors_per_page"]
    assert "Kappa would do" in verdicts["events_per_type"] and "Lambda" not in verdicts["events_per_type"]
