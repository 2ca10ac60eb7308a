"""Batch recompute time and serving latency, on the running platform (`lambdalake up` first).

    .venv/bin/python bench/batch.py --events 1000000 --queries 30

Writes N synthetic events (5% duplicates, Zipf pages) straight into a master dataset table of
its own with pyiceberg, in 1M-row appends (Kafka and the ingest job are not what is measured
here), then times one batch recompute of every lambda view through Trino, as
`batch_recompute` runs it, and the latency of dashboard queries on the resulting serving views.
Its tables are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from lambdalake.batch import Boundary, Layers, ensure_serving, lambda_views, recompute_view
from lambdalake.catalog import load_catalog
from lambdalake.config import Config, load_config
from lambdalake.query import run_query
from lambdalake.tables import ensure_table
from lambdalake.views import load_views

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
        table.append(data.cast(table.schema().as_arrow()))
    return table.refresh().current_snapshot().snapshot_id


def main(events: int, queries: int) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    layers = Layers(topic=config.kafka.events_topic, events_table=f"raw.bench_batch_{suffix}",
                    rejected_table="raw.events_rejected", suffix=f"__b{suffix}")
    try:
        started = time.monotonic()
        snapshot = fill(config, layers.events_table, events)
        loaded = time.monotonic() - started
        ensure_serving(config, layers)
        boundary = Boundary(datetime.now(timezone.utc).replace(second=0, microsecond=0), snapshot)
        timings = {}
        for view in lambda_views():
            started = time.monotonic()
            recompute_view(config, layers, view, boundary)
            timings[view.name] = round(time.monotonic() - started, 2)
        dashboards = {
            "top pages, last 3 hours": "select page, sum(page_views) from {page} where event_time_bucket > "
                                       "current_timestamp - interval '3' hour group by 1 order by 2 desc limit 10",
            "revenue per hour": "select event_time_bucket, sum(revenue) from {purchases} group by 1 order by 1",
            "events per type per minute": "select * from {types} order by event_time_bucket desc limit 50",
        }
        names = {"page": "page_views_per_page", "purchases": "purchases_per_product", "types": "events_per_type"}
        tables = {key: layers.serving(next(v for v in load_views() if v.name == name)) for key, name in names.items()}
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
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "events": events,
            "load_seconds_pyiceberg": round(loaded, 1),
            "recompute_seconds_by_view": timings,
            "recompute_seconds_all_views": round(sum(timings.values()), 2),
            "serving_query_latency": latency,
        }
    finally:
        catalog = load_catalog(config)
        _, rows = run_query(config, "show tables from batch")
        for view in load_views():
            run_query(config, f"drop view if exists {layers.serving(view)}")
            for (name,) in rows:
                if name.startswith(f"{view.name}{layers.suffix}__b"):
                    catalog.purge_table(f"batch.{name}")
            if catalog.table_exists(layers.speed(view)):
                catalog.purge_table(layers.speed(view))
        if catalog.table_exists(layers.events_table):
            catalog.purge_table(layers.events_table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(main(args.events, args.queries), indent=2))
