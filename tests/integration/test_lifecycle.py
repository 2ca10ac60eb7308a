"""Runs after every other test (see conftest): it stops the platform."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lambdalake.config import Config
from lambdalake.supervisor import Supervisor
from tests.integration.conftest import LAMBDALAKE

#: stops the platform
pytestmark = pytest.mark.serial


def processes_using(path: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(path) in cmdline and proc.pid != psutil.Process().pid:
            found.append(f"{proc.pid} {cmdline[:100]}")
    return found


@pytest.mark.lifecycle
def test_status_then_down_leaves_no_process_behind(config: Config) -> None:
    status = subprocess.run([LAMBDALAKE, "status", "--json"], capture_output=True, text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert [r["name"] for r in report if r["kind"] == "engine" and r["healthy"]] == [
        "postgres", "kafka", "flink", "trino", "airflow"]

    down = subprocess.run([LAMBDALAKE, "down"], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    # `down` ends leftovers itself; it reporting any means a program escaped its supervisor
    assert "leftover" not in down.stdout

    assert Supervisor(config).leftovers() == []
    assert processes_using(config.data_dir) == []
    assert subprocess.run([LAMBDALAKE, "status"], capture_output=True).returncode == 1

    # a user's own service on one of the platform's ports, now free: `down` is not its owner
    stranger = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", config.host, str(config.trino.port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not any(c.laddr.port == config.trino.port for c in psutil.Process(stranger.pid).net_connections()):
            assert time.monotonic() < deadline, "the stranger never listened"
            time.sleep(0.2)
        down = subprocess.run([LAMBDALAKE, "down"], capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert stranger.poll() is None, f"`down` ended a process that was not the platform's: {down.stdout}"
        assert "leftover" not in down.stdout
        # nor can `up` start there: it says where, and starts nothing
        up = subprocess.run([LAMBDALAKE, "up"], capture_output=True, text=True, timeout=120)
        assert up.returncode == 1, up.stdout + up.stderr
        assert f"trino.port: port {config.trino.port} is held by pid {stranger.pid}" in up.stderr, up.stderr
        assert "trino.port (LAMBDALAKE__TRINO__PORT)" in up.stderr, up.stderr
        assert Supervisor(config).leftovers() == [] and stranger.poll() is None
    finally:
        stranger.terminate()
        stranger.wait(10)
