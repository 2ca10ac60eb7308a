"""Batch recompute time against DuckDB, and serving latency, on the running platform.

    .venv/bin/python -m bench.batch --events 10000000 --queries 30

Writes N synthetic events (5% duplicates, Zipf pages) straight into a master dataset table of
its own with pyiceberg, in 1M-row appends (Kafka and the ingest job are not what is measured
here), then times one batch recompute of every lambda view through Trino, as
`batch_recompute` runs it (the copies judged once, then each view), alternating with runs where
each view judges its own copies (`--rounds` of each; medians), with the event_id slices it chose and the peak memory of its
largest query (Trino's query list). In the same run, DuckDB (in this process, every core) computes the
same aggregates, with the same dedup rule, over the same Parquet data files;
its results must equal the batch tables. Last, the latency of dashboard queries on the
resulting serving views. Its tables are removed afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import httpx
import numpy as np
import pyarrow as pa

from lambdalake import serving
from lambdalake.batch import (Boundary, Layers, count_copies, drop_counted_copies, ensure_serving, history_rows,
                              recompute_view, slice_count)
from lambdalake.catalog import load_catalog
from lambdalake.config import Config, data_size_bytes, load_config
from lambdalake.derive import counted_columns
from lambdalake.engines.trino import Trino
from lambdalake.query import run_query
from bench.report import save
from bench.schedules import schedules_paused
from lambdalake.tables import conform, ensure_table
from lambdalake.views import View, lambda_views

EVENT_TYPES = np.array(["page_view", "search", "click", "add_to_cart", "purchase"])
TYPE_SHARES = [0.55, 0.2, 0.14, 0.07, 0.04]


def chunk(rng: np.random.Generator, n: int, start: datetime) -> pa.Table:
    ids = [str(uuid.UUID(int=int(x), version=4)) for x in rng.integers(0, 2**63, n)]
    duplicates = rng.random(n) < 0.05
    ids = np.where(duplicates, np.roll(ids, 1), ids)  # a duplicate repeats its neighbour's event_id
    types = rng.choice(EVENT_TYPES, n, p=TYPE_SHARES)
    ingest = start + pd_seconds(rng.uniform(0, 3600, n))
    lateness = np.where(rng.random(n) < 0.1, rng.uniform(0, 7200, n), rng.uniform(0, 2, n))
    amount = np.where(types == "purchase", np.round(rng.uniform(2, 500, n), 2), np.nan)
    schema_table = {
        "event_id": pa.array(ids, pa.string()),
        "user_id": pa.array([f"user-{u:05d}" for u in rng.integers(0, 20000, n)], pa.string()),
        "session_id": pa.array([f"s-{s}" for s in rng.integers(0, 10**6, n)], pa.string()),
        "event_type": pa.array(types, pa.string()),
        "page": pa.array([f"/page/{p}" for p in np.minimum(rng.zipf(1.3, n), 300)], pa.string()),
        "product_id": pa.array([f"product-{p:05d}" for p in np.minimum(rng.zipf(1.2, n), 1000)], pa.string()),
        "amount": pa.array([None if np.isnan(a) else f"{a:.2f}" for a in amount], pa.string()).cast(pa.decimal128(12, 2)),
        "event_time": pa.array(ingest - lateness.astype("timedelta64[s]"), pa.timestamp("us", tz="UTC")),
        "properties": pa.array([None] * n, pa.map_(pa.string(), pa.string())),
        "ingest_time": pa.array(ingest, pa.timestamp("us", tz="UTC")),
        "kafka_partition": pa.array(rng.integers(0, 4, n), pa.int32()),
        "kafka_offset": pa.array(np.arange(n), pa.int64()),
    }
    return pa.table(schema_table)


def pd_seconds(seconds: np.ndarray) -> np.ndarray:
    return (seconds * 1e6).astype("timedelta64[us]")


def fill(config: Config, table_name: str, events: int) -> int:
    table = ensure_table(config, "raw.events", table_name)
    rng = np.random.default_rng(7)
    start = np.datetime64(datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=2), "us")
    for offset in range(0, events, 1_000_000):
        data = chunk(rng, min(1_000_000, events - offset), start)
        data = data.set_column(11, "kafka_offset", pa.array(np.arange(offset, offset + len(data)), pa.int64()))
        table.append(conform(data, table))
    return table.refresh().current_snapshot().snapshot_id


def duckdb_counted_sql(files: list[str], boundary: datetime, horizon_seconds: int, columns: list[str]) -> str:
    """The copies that count, as a DuckDB user would write it over the Parquet files, with the
    platform's dedup rule (a copy counts when the copy before it, if any, arrived more than the
    horizon earlier), keeping the columns the views read: the work count_copies does in Trino."""
    return "\n".join([
        "select " + ", ".join(f'"{c}"' for c in columns) + " "
        "from read_parquet([" + ", ".join(repr(f) for f in files) + "])",
        f"where ingest_time < timestamptz '{boundary:%Y-%m-%d %H:%M:%S}+00'",
        "qualify coalesce(lag(ingest_time) over (partition by event_id order by ingest_time, kafka_partition, "
        f"kafka_offset) < ingest_time - interval '{int(horizon_seconds)} seconds', true)",
    ])


def duckdb_sql(view: View, counted: str) -> str:
    """The view's batch aggregate over the copies that count, as a DuckDB user would write it."""
    dims = [f'"{d}"' for d in view.dimensions]
    aggs = [f'count(*) as "{m.name}"' if m.agg == "count"
            else f'count(distinct "{m.column}") as "{m.name}"' if m.agg == "count_distinct"
            else f'{m.agg}("{m.column}") as "{m.name}"' for m in view.measures]
    filters = [f'"{column}" in ({", ".join(repr(v) for v in values)})' for column, values in view.where]
    return "\n".join([
        f"select time_bucket(interval '{view.bucket_minutes} minutes', event_time) as event_time_bucket, "
        + ", ".join([*dims, *aggs]),
        f"from {counted}" + (" where " + " and ".join(filters) if filters else ""),
        "group by all",
    ])


def rows_of(rows: list) -> list[tuple]:  # type: ignore[type-arg]
    """Rows comparable across engines: timestamps in UTC, sorted."""
    return sorted(tuple(v.astimezone(timezone.utc) if isinstance(v, datetime) else v for v in row) for row in rows)


def duckdb_recompute(config: Config, layers: Layers, snapshot: int, boundary: datetime,
                     batch_tables: dict[str, str], shared: bool) -> dict[str, float]:
    """Seconds DuckDB takes over the snapshot's data files, as a batch run works (shared: the copies
    judged once into a table, then each view aggregated; else each view judging its own copies);
    checks its rows equal Trino's batch tables."""
    table = load_catalog(config).load_table(layers.events_table)
    files = [task.file.file_path.removeprefix("file://") for task in table.scan(snapshot_id=snapshot).plan_files()]
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    horizon, timings = layers.horizon(config), {}
    if shared:
        started = time.monotonic()
        columns = sorted(set().union(*(counted_columns(v) for v in lambda_views())))
        connection.execute("create temp table counted_copies as\n" + duckdb_counted_sql(files, boundary, horizon, columns))
        timings["count_copies"] = round(time.monotonic() - started, 2)
    for view in lambda_views():
        started = time.monotonic()
        sql = duckdb_sql(view, "counted_copies")
        if not shared:
            sql = (f"with counted_copies as ({duckdb_counted_sql(files, boundary, horizon, sorted(counted_columns(view)))})\n"
                   + sql)
        rows = connection.execute(sql).fetchall()
        timings[view.name] = round(time.monotonic() - started, 2)
        # the values only: a distinct count's batch table also keeps its sketch and its distinct values
        columns_read = ", ".join(["event_time_bucket", *(f'"{c}"' for c in (*view.dimensions, *(m.name for m in view.measures)))])
        trino_rows = run_query(config, f"select {columns_read} from {batch_tables[view.name]}")[1]
        if rows_of(rows) != rows_of(trino_rows):
            raise SystemExit(f"{view.name}: DuckDB and Trino disagree ({len(rows)} vs {len(trino_rows)} rows)")
    connection.close()
    return timings


def trino_recompute(config: Config, layers: Layers, boundary: Boundary, shared: bool
                    ) -> tuple[dict[str, float], dict[str, float], dict[str, str], dict[str, dict[str, object]]]:
    """Seconds and peak memory (MiB) of each step of a full batch run through Trino, its batch
    tables, and count_copies' CPU by operator: as batch_recompute runs it (shared: count_copies,
    then each view), or with each view judging its own copies (no counted copies recorded)."""
    timings, peaks, batch_tables, profiles = {}, {}, {}, {}
    # the events table's own name: Trino's query text quotes each part of the qualified name
    marker = layers.events_table.split(".")[1]
    drop_counted_copies(config, layers)
    if shared:
        started, since = time.monotonic(), time.time() - 1
        count_copies(config, layers, boundary, full=True)  # as the DAG's task does, once for every view
        timings["count_copies"] = round(time.monotonic() - started, 2)
        peaks["count_copies"] = round(peak_memory_bytes(config, marker, since) / 2**20, 1)
        profiles["count_copies"] = cpu_by_operator(config, marker, since)
    for view in lambda_views():
        started, since = time.monotonic(), time.time() - 1
        batch_tables[view.name] = recompute_view(config, layers, view, boundary, full=True)  # type: ignore[assignment]
        timings[view.name] = round(time.monotonic() - started, 2)
        peaks[view.name] = round(peak_memory_bytes(config, marker, since) / 2**20, 1)
    drop_counted_copies(config, layers)
    return timings, peaks, batch_tables, profiles


def trino_query_api(config: Config, query_id: str = "") -> Any:
    """Trino's /v1/query: every query it still lists (summaries), or one query's full info."""
    url = f"{Trino(config).url}/v1/query" + (f"/{query_id}" if query_id else "")
    return httpx.get(url, headers={"X-Trino-User": "bench"}, timeout=30).json()


def trino_queries(config: Config, marker: str, since: float) -> list[dict[str, Any]]:
    """The queries Trino still lists (its /v1/query summaries) that name `marker` and began after `since`."""
    queries = trino_query_api(config)
    return [q for q in queries if marker in q["query"]
            and datetime.fromisoformat(q["queryStats"]["createTime"].replace("Z", "+00:00")).timestamp() >= since]


def peak_memory_bytes(config: Config, marker: str, since: float) -> int:
    """The largest peak user memory of trino_queries(marker, since)."""
    return max((data_size_bytes(q["queryStats"]["peakUserMemoryReservation"], "peak")
                for q in trino_queries(config, marker, since)), default=0)


#: the units of an airlift Duration, as Trino's REST API writes it ('1.23s', '45.60ms', '2.00m')
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def trino_seconds(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)\s*([a-z]+)", text)
    if not match or match[2] not in DURATION_UNITS:
        raise ValueError(f"{text!r} is not a Trino duration")
    return float(match[1]) * DURATION_UNITS[match[2]]


def cpu_by_operator(config: Config, marker: str, since: float) -> dict[str, object]:
    """Where the CPU of trino_queries(marker, since) went: their summed CPU seconds, their summed
    elapsed seconds (a sum over the queries, not the step's wall time), and the CPU seconds of each
    operator type (Trino's operator summaries, what EXPLAIN ANALYZE prints per operator), largest first."""
    queries = trino_queries(config, marker, since)
    operators: Counter[str] = Counter()
    cpu = elapsed = 0.0
    for query in queries:
        stats = trino_query_api(config, query["queryId"])["queryStats"]
        cpu += trino_seconds(stats["totalCpuTime"])
        elapsed += trino_seconds(stats["elapsedTime"])
        for summary in stats["operatorSummaries"]:
            operators[summary["operatorType"]] += sum(trino_seconds(summary[key])
                                                      for key in ("addInputCpu", "getOutputCpu", "finishCpu"))
    return {"queries": len(queries), "cpu_s": round(cpu, 1), "elapsed_s": round(elapsed, 1),
            "cpu_s_by_operator": {name: round(seconds, 1) for name, seconds in operators.most_common()}}


def main(events: int, queries: int, batch_memory: str, rounds: int) -> dict[str, object]:
    config = load_config()
    if batch_memory:
        config = dataclasses.replace(config, batch=dataclasses.replace(config.batch, query_max_memory=batch_memory))
    suffix = uuid.uuid4().hex[:8]
    layers = Layers(topic=config.kafka.events_topic, events_table=f"raw.bench_batch_{suffix}",
                    rejected_table="raw.events_rejected", suffix=f"__b{suffix}")
    try:
        started = time.monotonic()
        snapshot = fill(config, layers.events_table, events)
        loaded = time.monotonic() - started
        ensure_serving(config, layers)
        boundary = Boundary(datetime.now(timezone.utc).replace(second=0, microsecond=0), snapshot)
        # side by side: the copies judged once per run (what runs) and once per view (before), alternating
        runs: dict[str, dict[str, list[float]]] = {"shared": {"trino": [], "duckdb": []},
                                                   "per_view": {"trino": [], "duckdb": []}}
        for index in range(rounds):
            for mode in (("shared", "per_view") if index % 2 == 0 else ("per_view", "shared")):
                timings, peaks, batch_tables, profiles = trino_recompute(config, layers, boundary, mode == "shared")
                duckdb_timings = duckdb_recompute(config, layers, snapshot, boundary.moment, batch_tables,
                                                  mode == "shared")
                runs[mode]["trino"].append(round(sum(timings.values()), 2))
                runs[mode]["duckdb"].append(round(sum(duckdb_timings.values()), 2))
                if mode == "shared":
                    last = timings, peaks, duckdb_timings, profiles
        timings, peaks, duckdb_timings, profiles = last
        medians = {mode: {engine: statistics.median(seconds) for engine, seconds in engines.items()}
                   for mode, engines in runs.items()}
        dashboards = {
            "top pages, last 3 hours": "select page, sum(page_views) from {page} where event_time_bucket > "
                                       "current_timestamp - interval '3' hour group by 1 order by 2 desc limit 10",
            "revenue per hour": "select event_time_bucket, sum(revenue) from {purchases} group by 1 order by 1",
            "events per type per minute": "select * from {types} order by event_time_bucket desc limit 50",
            "visitors per page, last 3 hours": "select event_time_bucket, page, visitors, visitors_is_exact "
                                               "from {visitors} where event_time_bucket > current_timestamp - "
                                               "interval '3' hour order by visitors desc limit 20",
            "visitors per page, rolled up over 3 hours": "select page, cardinality(merge(cast(visitors_sketch as "
                                                         "HyperLogLog))) from {visitors} where event_time_bucket > "
                                                         "current_timestamp - interval '3' hour group by 1 "
                                                         "order by 2 desc limit 10",
        }
        names = {"page": "page_views_per_page", "purchases": "purchases_per_product", "types": "events_per_type",
                 "visitors": "visitors_per_page"}
        tables = {key: layers.serving(next(v for v in lambda_views() if v.name == name)) for key, name in names.items()}
        latency = {}
        for title, sql in dashboards.items():
            samples = []
            for _ in range(queries):
                started = time.monotonic()
                run_query(config, sql.format(**tables))
                samples.append(time.monotonic() - started)
            latency[title] = {"p50_s": round(statistics.median(samples), 3),
                              "p95_s": round(statistics.quantiles(samples, n=20)[-1], 3)}
        return {
            "events": events,
            "load_seconds_pyiceberg": round(loaded, 1),
            "rounds": rounds,
            "seconds_by_round": runs,
            "recompute_seconds_by_view": timings,
            "recompute_seconds_all_views": medians["shared"]["trino"],
            "batch_memory_bytes": config.batch.memory_bytes(config.trino),
            "event_id_slices": slice_count(config, history_rows(config, layers.events_table, snapshot)),
            "peak_query_memory_mib_by_view": peaks,
            "trino_cpu_by_operator": profiles,
            "duckdb_seconds_by_view": duckdb_timings,
            "duckdb_seconds_all_views": medians["shared"]["duckdb"],
            "ratio_trino_to_duckdb": round(medians["shared"]["trino"] / medians["shared"]["duckdb"], 2),
            "per_view_dedup_seconds": medians["per_view"],
            "per_view_dedup_ratio_trino_to_duckdb": round(medians["per_view"]["trino"] / medians["per_view"]["duckdb"], 2),
            "speedup_of_judging_once_trino": round(medians["per_view"]["trino"] / medians["shared"]["trino"], 2),
            "serving_query_latency": latency,
        }
    finally:
        drop_counted_copies(config, layers)
        catalog = load_catalog(config)
        for view in lambda_views():
            serving.drop(config, layers.serving(view))  # and the batch tables its steps wrote
            if catalog.table_exists(layers.speed(view)):
                catalog.purge_table(layers.speed(view))
        if catalog.table_exists(layers.events_table):
            catalog.purge_table(layers.events_table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternating full runs of each way (copies judged once per run, and per view); medians")
    parser.add_argument("--batch-memory", default="", help="[batch] query_max_memory for this run, e.g. 500MB")
    args = parser.parse_args()
    with schedules_paused(load_config()):
        result = main(args.events, args.queries, args.batch_memory, args.rounds)
    print(json.dumps(result, indent=2, default=str))
    save(f"batch-{args.events // 1_000_000}m", result,
         f"batch recompute of every lambda view over {args.events:,} events: Trino "
         f"{result['recompute_seconds_all_views']} s, DuckDB {result['duckdb_seconds_all_views']} s on the same "
         f"Parquet files, ratio {result['ratio_trino_to_duckdb']} (target <= 2.0); with each view judging its own "
         f"copies: Trino {result['per_view_dedup_seconds']['trino']} s, DuckDB {result['per_view_dedup_seconds']['duckdb']} s"
         f" (medians of {args.rounds})")
