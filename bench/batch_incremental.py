"""Incremental against full batch runs, by history size, side by side in one run.

    .venv/bin/python -m bench.batch_incremental --history 1000000 10000000 --new 100000

For each history size: a master dataset of its own, whose events arrived over a year (ingest
and event time), is written with pyiceberg and fully recomputed (every lambda view), at B1.
Then `--new` events arrive in the hour after B1, like real traffic: 10 % late by up to 30
days, 5 % copies of events of the hour before. At B2 an incremental run (the default) and a
full run (`full`) of every view are timed, with the peak Trino memory of each run's largest
query, and their batch tables must be equal row for row. Its tables are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.batch import peak_memory_bytes
from bench.report import RESULTS, save
from bench.schedules import schedules_paused
from lambdalake import serving, state
from lambdalake.batch import Boundary, Layers, ensure_serving, recompute_view
from lambdalake.catalog import load_catalog
from lambdalake.config import Config, load_config
from lambdalake.query import run_query
from lambdalake.tables import conform, ensure_table
from lambdalake.views import lambda_views

TYPES = np.array(["page_view", "search", "click", "add_to_cart", "purchase"])
SHARES = [0.55, 0.2, 0.14, 0.07, 0.04]
YEAR = 365 * 86400


def events(rng: np.random.Generator, n: int, first_offset: int, ingest_from: datetime, span_seconds: float,
           late_fraction: float, ids: np.ndarray | None = None) -> pa.Table:
    """n events ingested over span_seconds from ingest_from; `late_fraction` late by up to 30 days."""
    ingest = np.datetime64(ingest_from.replace(tzinfo=None), "us") + (rng.uniform(0, span_seconds, n) * 1e6).astype("timedelta64[us]")
    ingest.sort()
    lateness = np.where(rng.random(n) < late_fraction, rng.uniform(0, 30 * 86400, n), rng.uniform(0, 2, n))
    types = rng.choice(TYPES, n, p=SHARES)
    amount = np.where(types == "purchase", np.round(rng.uniform(2, 500, n), 2), np.nan)
    if ids is None:
        ids = np.array([str(uuid.UUID(int=int(x), version=4)) for x in rng.integers(0, 2**63, n)])
    return pa.table({
        "event_id": pa.array(ids, pa.string()),
        "user_id": pa.array([f"user-{u:05d}" for u in rng.integers(0, 20000, n)], pa.string()),
        "session_id": pa.array([f"s-{s}" for s in rng.integers(0, 10**6, n)], pa.string()),
        "event_type": pa.array(types, pa.string()),
        "page": pa.array([f"/page/{p}" for p in np.minimum(rng.zipf(1.3, n), 300)], pa.string()),
        "product_id": pa.array([f"product-{p:05d}" for p in np.minimum(rng.zipf(1.2, n), 1000)], pa.string()),
        "amount": pa.array([None if np.isnan(a) else f"{a:.2f}" for a in amount], pa.string()).cast(pa.decimal128(12, 2)),
        "event_time": pa.array(ingest - (lateness * 1e6).astype("timedelta64[us]"), pa.timestamp("us", tz="UTC")),
        "properties": pa.array([None] * n, pa.map_(pa.string(), pa.string())),
        "ingest_time": pa.array(ingest, pa.timestamp("us", tz="UTC")),
        "kafka_partition": pa.array(rng.integers(0, 4, n), pa.int32()),
        "kafka_offset": pa.array(np.arange(first_offset, first_offset + n), pa.int64()),
    })


def run_all(config: Config, layers: Layers, boundary: Boundary, *, full: bool) -> dict[str, object]:
    """Every lambda view's run at B: seconds, the peak memory of its largest query, how it ran."""
    started, since = time.monotonic(), time.time() - 1
    modes = {}
    for view in lambda_views():
        recompute_view(config, layers, view, boundary, full=full)
        step = state.live_step(config, layers.serving(view))
        modes[view.name] = None if step is None else step.run_mode
    return {"seconds": round(time.monotonic() - started, 2), "modes": modes,
            "peak_query_memory_mib": round(peak_memory_bytes(config, layers.events_table.split(".")[1], since) / 2**20, 1)}


def one_size(config: Config, history: int, new: int) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:8]
    layers = Layers(topic=config.kafka.events_topic, events_table=f"raw.bench_incr_{suffix}",
                    rejected_table="raw.events_rejected", suffix=f"__n{suffix}")
    rng = np.random.default_rng(15)
    b1 = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=2)
    table = ensure_table(config, "raw.events", layers.events_table)
    try:
        started = time.monotonic()
        year_start = b1 - timedelta(seconds=YEAR)
        per_chunk = 1_000_000
        for offset in range(0, history, per_chunk):  # each chunk a slice of the year, in order
            n = min(per_chunk, history - offset)
            span = YEAR * n / history
            rows = events(rng, n, offset, year_start + timedelta(seconds=YEAR * offset / history), span, 0.01)
            table.append(conform(rows, table))
        loaded = round(time.monotonic() - started, 1)
        ensure_serving(config, layers)
        first = run_all(config, layers, Boundary(b1, table.refresh().current_snapshot().snapshot_id), full=True)
        # the hour after B1: new events, and copies of the hour before it (the dedup horizon)
        recent = run_query(config, f"select event_id from {layers.events_table} where ingest_time >= "
                                   f"timestamp '{b1:%Y-%m-%d %H:%M:%S} UTC' - interval '1' hour limit {new // 20}")[1]
        copies = np.array([r[0] for r in recent])
        arrivals = events(rng, new - len(copies), history, b1, 3600, 0.1)
        retried = events(rng, len(copies), history + new, b1, 3600, 0.0, ids=copies) if len(copies) else None
        table.append(conform(arrivals, table))
        if retried is not None:
            table.append(conform(retried, table))
        b2 = Boundary(b1 + timedelta(hours=1), table.refresh().current_snapshot().snapshot_id)
        incremental = run_all(config, layers, b2, full=False)
        incremental_rows, renamed = {}, []
        for view in lambda_views():  # kept aside: the full run at the same B writes a table of the same name
            live = serving.live(config, layers.serving(view))
            incremental_rows[view.name] = sorted(map(tuple, run_query(config, f"select * from {live.batch_table}")[1]))  # type: ignore[union-attr]
            renamed.append(f"{live.batch_table}_incr")  # type: ignore[union-attr]
            run_query(config, f"alter table {live.batch_table} rename to {renamed[-1]}")  # type: ignore[union-attr]
        try:
            full = run_all(config, layers, b2, full=True)
            for view in lambda_views():
                live = serving.live(config, layers.serving(view))
                if sorted(map(tuple, run_query(config, f"select * from {live.batch_table}")[1])) != incremental_rows[view.name]:  # type: ignore[union-attr]
                    raise SystemExit(f"{view.name} at {history:,} events: the incremental run differs from the full one")
        finally:
            for name in renamed:
                run_query(config, f"drop table if exists {name}")
        return {"history_events": history, "new_events": new, "copies_of_recent_events": len(copies),
                "load_seconds_pyiceberg": loaded, "first_full_seconds": first["seconds"],
                "incremental": incremental, "full": full,
                "full_over_incremental": round(full["seconds"] / incremental["seconds"], 1)}  # type: ignore[operator]
    finally:
        catalog = load_catalog(config)
        for view in lambda_views():
            serving.drop(config, layers.serving(view))
            if catalog.table_exists(layers.speed(view)):
                catalog.purge_table(layers.speed(view))
        if catalog.table_exists(layers.events_table):
            catalog.purge_table(layers.events_table)


def merged(results: list[dict[str, object]]) -> list[dict[str, object]]:
    """This run's sizes over those already in results/batch-incremental.json (a size run again replaces
    its point), each with the day it was measured, smallest history first."""
    path = RESULTS / "batch-incremental.json"
    earlier = json.loads(path.read_text()) if path.exists() else {"sizes": []}
    today = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sizes = {s["history_events"]: {"measured_at": earlier.get("measured_at"), **s} for s in earlier["sizes"]}
    sizes.update({r["history_events"]: {**r, "measured_at": today} for r in results})
    return [sizes[k] for k in sorted(sizes)]  # type: ignore[index]


def plot(sizes: list[dict[str, object]]) -> Path:
    """Both curves, time against history size (log-log): the full run grows with history, the
    incremental one with what arrived."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = [s["history_events"] for s in sizes]
    figure, axis = plt.subplots(figsize=(7, 4))
    for run, style in (("full", "o-"), ("incremental", "s-")):
        axis.plot(history, [s[run]["seconds"] for s in sizes], style, label=f"{run} run")  # type: ignore[index]
    axis.set(xscale="log", yscale="log", xlabel="events of history", ylabel="seconds (every lambda view)",
             title=f"batch run time by history size ({sizes[0]['new_events']:,} new events)")
    axis.legend()
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path = RESULTS / "batch-incremental.png"
    figure.savefig(path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--new", type=int, default=100_000)
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from the saved results")
    args = parser.parse_args()
    if args.plot_only:
        print(plot(json.loads((RESULTS / "batch-incremental.json").read_text())["sizes"]))
        raise SystemExit
    config = load_config()
    with schedules_paused(config):
        results = [one_size(config, history, args.new) for history in args.history]
    print(json.dumps(results, indent=2, default=str))
    save("batch-incremental", {"sizes": merged(results)},
         "incremental vs full batch run (every lambda view) by history size: "
         + "; ".join(f"{r['history_events']:,} events: incremental {r['incremental']['seconds']} s, "  # type: ignore[index]
                     f"full {r['full']['seconds']} s ({r['full_over_incremental']}x)" for r in results))
    plot(merged([]))
