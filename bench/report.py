"""What every benchmark does with its result: the machine it ran on, a JSON file, a line in BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
LOG_HEADING = "## Log (one line per run, appended by the benchmarks)"


def machine() -> str:
    """One line: CPU model, cores, memory, OS."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, {platform.system()} {platform.release()}"


def save(name: str, result: dict[str, object], summary: str) -> Path:
    """Write results/<name>.json and append a dated line (summary, machine) to BENCHMARKS.md's log."""
    result = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              **result}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else f"# Benchmarks\n\n{LOG_HEADING}\n"
    if LOG_HEADING not in text:
        text += f"\n{LOG_HEADING}\n"
    BENCHMARKS_MD.write_text(text.rstrip("\n") + f"\n- {result['measured_at'][:10]} `{name}`: {summary} "
                             f"({result['machine']}; `bench/results/{name}.json`)\n")
    return path


def remove_run(config, job_name: str, topic: str, serving_views: list[str], tables: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Remove what a streaming bench run made: its job (cancelled, waited for), its topic, its
    serving views and its tables."""
    import time

    from confluent_kafka.admin import AdminClient

    from lambdalake import serving
    from lambdalake.catalog import load_catalog
    from lambdalake.jobs import cancel, live_jobs

    cancel(config, job_name)
    while live_jobs(config, job_name):
        time.sleep(1)
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    catalog = load_catalog(config)
    for view_name in serving_views:
        serving.drop(config, view_name)
    for table in tables:
        if catalog.table_exists(table):
            catalog.purge_table(table)
