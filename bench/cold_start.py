"""Cold start: seconds from `lambdalake up` (every engine stopped) to all engines healthy.

    .venv/bin/python -m bench.cold_start --runs 3

Stops the platform first (`lambdalake down`), then times `up` `--runs` times, stopping in
between, and leaves the platform running. Each engine's own time comes from `up`'s output.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import save

LAMBDALAKE = str(Path(sys.executable).with_name("lambdalake"))


def timed_up() -> tuple[float, dict[str, int]]:
    started = time.monotonic()
    output = subprocess.run([LAMBDALAKE, "up"], check=True, capture_output=True, text=True).stdout
    seconds = time.monotonic() - started
    engines = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+): healthy in (\d+)s", output, re.MULTILINE)}
    return seconds, engines


def main(runs: int) -> dict[str, object]:
    samples, engines = [], []
    for run in range(runs):
        subprocess.run([LAMBDALAKE, "down"], check=True, capture_output=True)
        seconds, per_engine = timed_up()
        print(f"run {run + 1}: up in {seconds:.1f}s {per_engine}", flush=True)
        samples.append(round(seconds, 1))
        engines.append(per_engine)
    return {"runs": runs, "up_seconds": samples, "up_seconds_max": max(samples),
            "up_seconds_median": statistics.median(samples), "engine_seconds": engines}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    result = main(parser.parse_args().runs)
    print(json.dumps(result, indent=2))
    save("cold-start", result, f"`lambdalake up` to all healthy: median {result['up_seconds_median']} s, "
                               f"max {result['up_seconds_max']} s over {result['runs']} runs (target <= 90 s)")
