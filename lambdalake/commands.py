"""External commands: one place that turns a failed command into a readable project error."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from lambdalake.errors import EngineError, LambdalakeError


def run(cmd: list[str], what: str, *, error: type[LambdalakeError] = EngineError,
        env: Mapping[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run cmd to completion; on a non-zero exit raise `error` with what failed and the output's tail."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        # Java stack frames drown the lines that say what went wrong (e.g. a Python traceback)
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if not line.startswith("\tat ")]
        tail = "\n".join(lines[-40:])
        raise error(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc
