"""What slicing the batch recompute costs and saves: time and peak memory against the slice count.

    .venv/bin/python -m bench.batch_slices --events 2000000 --slices 1,2,4,8 --runs 3

Writes N synthetic events into a master dataset table of its own (bench.batch.fill), then runs
the batch select of one view (the whole dedup, as `batch_recompute` runs it) over every event_id
slice, for each slice count in turn, side by side in one run. Reports the median seconds for all
slices of a count and the largest peak memory of a slice query (Trino's query stats). The table
is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime, timezone

from bench.batch import fill
from bench.report import save
from bench.schedules import schedules_paused
from lambdalake.catalog import load_catalog
from lambdalake.config import load_config
from lambdalake.derive import batch_select_sql
from lambdalake.query import connect
from lambdalake.views import lambda_views


def main(events: int, counts: list[int], runs: int, view_name: str) -> dict[str, object]:
    config = load_config()
    table = f"raw.bench_slices_{uuid.uuid4().hex[:8]}"
    view = next(v for v in lambda_views() if v.name == view_name)
    try:
        snapshot = fill(config, table, events)
        boundary = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        seconds: dict[int, list[float]] = {count: [] for count in counts}
        peaks: dict[int, int] = {count: 0 for count in counts}
        for _ in range(runs):
            for count in counts:  # interleaved, so drift hits every count alike
                started = time.monotonic()
                for index in range(count):
                    sql = batch_select_sql(view, config.iceberg.catalog_name, table, snapshot, boundary,
                                           config.dedup.horizon_seconds, None if count == 1 else (index, count))
                    cursor = connect(config).cursor()
                    cursor.execute(sql)
                    cursor.fetchall()
                    peaks[count] = max(peaks[count], int(cursor.stats["peakMemoryBytes"]))
                seconds[count].append(time.monotonic() - started)
        return {
            "events": events, "view": view_name, "runs": runs,
            "by_slices": {count: {"median_seconds": round(statistics.median(seconds[count]), 2),
                                  "time_ratio_to_one_slice": round(statistics.median(seconds[count])
                                                                   / statistics.median(seconds[counts[0]]), 2),
                                  "peak_memory_mib": round(peaks[count] / 2**20, 1),
                                  "peak_bytes_per_event": round(peaks[count] / events, 1)}
                          for count in counts},
        }
    finally:
        catalog = load_catalog(config)
        if catalog.table_exists(table):
            catalog.purge_table(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--slices", default="1,2,4,8", help="slice counts, comma-separated; the first is the base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--view", default="page_views_per_page")
    args = parser.parse_args()
    with schedules_paused(load_config()):
        result = main(args.events, [int(c) for c in args.slices.split(",")], args.runs, args.view)
    print(json.dumps(result, indent=2))
    save(f"batch-slices-{args.events // 1_000_000}m", result,
         f"batch select of {args.view} over {args.events:,} events in event_id slices (median of {args.runs}): "
         + "; ".join(f"{c} slice(s) {r['median_seconds']} s ({r['time_ratio_to_one_slice']}x), peak "
                     f"{r['peak_memory_mib']} MiB" for c, r in result["by_slices"].items()))  # type: ignore[attr-defined]
