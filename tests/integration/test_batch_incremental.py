"""Incremental batch runs on the real engines: each equals a full recompute, row for row.

The test writes the master dataset itself, wave after wave of ingest time, so that it controls
what real producers do over hours: events late by up to 30 days, copies within one run, copies
that straddle a run's boundary (within the dedup horizon: ignored), copies hours apart (beyond
it: counted again), copies in other partitions at the same instant. After each wave a batch run
adds what arrived to the previous batch table. Its output must equal the full recompute at the
same B, and the truth counted in plain Python by the dedup rule. A run killed midway leaves
serving as it was, and the next one completes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from lambdalake import state
from lambdalake.batch import (Boundary, Layers, count_copies, drop_counted_copies, drop_layers, ensure_serving,
                              recompute_view, served)
from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.derive import batch_select_sql
from lambdalake.query import run_query
from lambdalake.tables import ensure_table
from lambdalake.views import View, lambda_views
from tests.integration.conftest import aggregated_counted_copies

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
WAVES = 5
EVENTS_PER_WAVE = 4000
HORIZON = 3600
TYPES = ["page_view", "search", "click", "add_to_cart", "purchase"]
VIEWS = ["events_per_type", "purchases_per_product"]

Row = dict[str, object]


def wave_rows(wave: int, rng: random.Random, offsets: list[int], earlier: list[Row]) -> list[Row]:
    """One hour of ingest time: new events (10 % up to 30 days late) and copies of every kind."""
    begin = START + timedelta(hours=wave)
    rows: list[Row] = []

    def copy(row: Row, ingest: datetime, partition: int) -> Row:
        offsets[partition] += 1
        return {**row, "ingest_time": ingest, "kafka_partition": partition, "kafka_offset": offsets[partition]}

    for i in range(EVENTS_PER_WAVE):
        ingest = begin + timedelta(seconds=rng.randrange(3600))
        late = timedelta(days=30) * rng.random() if rng.random() < 0.1 else timedelta(seconds=rng.randrange(5))
        kind = rng.choice(TYPES)
        event: Row = {"event_id": f"w{wave}-{i}", "user_id": "user-1", "session_id": "session-1", "event_type": kind,
                      "page": "/", "product_id": f"product-{rng.randrange(7)}" if kind == "purchase" else None,
                      "amount": Decimal(rng.randrange(100, 99999)) / 100 if kind == "purchase" else None,
                      "event_time": ingest - late, "properties": None}
        partition = rng.randrange(3)
        rows.append(copy(event, ingest, partition))
        roll = rng.random()
        if roll < 0.05:  # a retry a few seconds later, re-keyed into another partition
            rows.append(copy(event, ingest + timedelta(seconds=rng.randrange(1, 20)), (partition + 1) % 3))
        elif roll < 0.08:  # the same instant, another partition: the log order decides
            rows.append(copy(event, ingest, (partition + 2) % 3))
    # copies of the previous waves' events: within the horizon across this run's boundary, and beyond it
    for event in rng.sample(earlier, min(len(earlier), 300)):
        gap = (begin + timedelta(seconds=rng.randrange(3600))) - event["ingest_time"]  # type: ignore[operator]
        rows.append(copy(event, event["ingest_time"] + gap, rng.randrange(3)))  # type: ignore[operator]
    return [r for r in rows if r["ingest_time"] < begin + timedelta(hours=1)]  # type: ignore[operator]


def counted(rows: list[Row], boundary: datetime) -> list[Row]:
    """The copies below B that count: none of the same event_id earlier (ingest time, partition,
    offset) within the horizon. Written from the rule, not from the code under test."""
    by_event: dict[object, list[Row]] = {}
    for row in rows:
        if row["ingest_time"] < boundary:  # type: ignore[operator]
            by_event.setdefault(row["event_id"], []).append(row)
    result = []
    for copies in by_event.values():
        copies.sort(key=lambda r: (r["ingest_time"], r["kafka_partition"], r["kafka_offset"]))
        for previous, row in zip([None, *copies], copies):
            if previous is None or previous["ingest_time"] < row["ingest_time"] - timedelta(seconds=HORIZON):  # type: ignore[operator]
                result.append(row)
    return result


def truth(rows: list[Row], boundary: datetime) -> Counter[tuple[datetime, str]]:
    """events_per_type below B: counted copies per (event-time minute, type)."""
    minute = lambda t: t.replace(second=0, microsecond=0)  # noqa: E731
    return Counter((minute(r["event_time"]), r["event_type"]) for r in counted(rows, boundary))  # type: ignore[arg-type]


def as_arrow(rows: list[Row], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def view(name: str) -> View:
    return next(v for v in lambda_views() if v.name == name)


def table_rows(config: Config, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    return sorted(tuple(row) for row in run_query(config, sql)[1])


@pytest.fixture
def layers(config: Config) -> Iterator[Layers]:
    suffix = uuid.uuid4().hex[:8]
    layers = Layers(topic=config.kafka.events_topic, events_table=f"raw.test_incr_events_{suffix}",
                    rejected_table=f"raw.test_incr_rejected_{suffix}", suffix=f"__i{suffix}", horizon_seconds=HORIZON)
    ensure_table(config, "raw.events", layers.events_table)
    ensure_serving(config, layers, VIEWS)
    yield layers
    drop_layers(config, layers)


def kill_midway(config: Config, layers: Layers, boundary: Boundary) -> None:
    """Start a batch run of events_per_type in another process, in 4 slices, and kill it once its
    first slice is written."""
    script = (
        "from lambdalake.config import load_config\n"
        "from lambdalake.batch import Boundary, Layers, recompute_view\n"
        "from lambdalake.views import lambda_views\n"
        "from datetime import datetime\n"
        f"layers = Layers(**{layers.__dict__!r})\n"
        f"boundary = Boundary(datetime.fromisoformat({boundary.moment.isoformat()!r}), {boundary.events_snapshot})\n"
        "view = next(v for v in lambda_views() if v.name == 'events_per_type')\n"
        "recompute_view(load_config(), layers, view, boundary, slices=4)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    slices_table = served(config, layers, view("events_per_type")).slices_table
    deadline = time.monotonic() + 120
    while not load_catalog(config).table_exists(slices_table):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run never wrote its first slice"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_incremental_runs_equal_the_full_recompute_row_for_row(config: Config, layers: Layers) -> None:
    rng = random.Random(15)
    table = load_catalog(config).load_table(layers.events_table)
    schema = table.schema().as_arrow()
    offsets = [0, 0, 0]
    written: list[Row] = []
    catalog = config.iceberg.catalog_name
    for wave in range(WAVES):
        rows = wave_rows(wave, rng, offsets, written)
        table.append(as_arrow(rows, schema))
        written += rows
        boundary = Boundary(START + timedelta(hours=wave + 1), table.refresh().current_snapshot().snapshot_id)
        if wave == 3:  # killed midway: serving stays on the previous run, and the next run completes
            before = state.live_step(config, layers.serving(view("events_per_type")))
            kill_midway(config, layers, boundary)
            after = state.live_step(config, layers.serving(view("events_per_type")))
            assert after is not None and before is not None and after.id == before.id
            served_rows = run_query(config, f"select event_time_bucket, event_type, events "
                                            f"from {layers.serving(view('events_per_type'))}")[1]
            assert Counter({(b.astimezone(timezone.utc), k): n for b, k, n in served_rows}) == \
                truth(written, before.boundary), "serving changed after a killed run"  # type: ignore[arg-type]
        shared = wave % 2 == 1  # as the DAG runs it: the copies judged once for the views; else each view judges its own
        started = datetime.now(timezone.utc)
        if shared:
            counted = count_copies(config, layers, boundary, VIEWS)
            assert counted is not None and counted.ingest_from == START + timedelta(hours=wave), counted
        for name in VIEWS:
            batch_table = recompute_view(config, layers, view(name), boundary)
            step = state.live_step(config, layers.serving(view(name)))
            assert step is not None and step.batch_table == batch_table
            read = aggregated_counted_copies(config, layers, [batch_table, served(config, layers, view(name)).slices_table],
                                             started)
            assert read == shared, (name, wave)
            assert step.run_mode == ("full" if wave == 0 else "incremental"), step.run_reason
            full = batch_select_sql(served(config, layers, view(name)).view, catalog, layers.events_table,
                                    boundary.events_snapshot, boundary.moment, HORIZON)
            assert table_rows(config, f"select * from {batch_table}") == table_rows(config, full), \
                f"{name} after wave {wave}: the incremental run differs from the full recompute"
        if shared:
            drop_counted_copies(config, layers)
        events = table_rows(config, f"select * from {served(config, layers, view('events_per_type')).batch_table(boundary.moment)}")
        assert Counter({(b.astimezone(timezone.utc), k): n for b, k, n in events}) == truth(written, boundary.moment)
        if wave > 0:
            assert step.buckets_recomputed and step.buckets_first < step.buckets_last  # type: ignore[operator]
    # the last full run is recent: only asking for it makes a run full, and it equals the sum of the increments
    more = wave_rows(WAVES, rng, offsets, written)
    table.append(as_arrow(more, schema))
    written += more
    boundary = Boundary(START + timedelta(hours=WAVES + 1), table.refresh().current_snapshot().snapshot_id)
    incremental = recompute_view(config, layers, view("events_per_type"), boundary)
    incremental_rows = table_rows(config, f"select * from {incremental}")
    run_query(config, f"alter table {incremental} rename to {incremental}_incremental")
    try:
        assert recompute_view(config, layers, view("events_per_type"), boundary, full=True) == incremental
        step = state.live_step(config, layers.serving(view("events_per_type")))
        assert step is not None and step.run_mode == "full" and "asked for" in (step.run_reason or "")
        assert table_rows(config, f"select * from {incremental}") == incremental_rows
    finally:
        run_query(config, f"drop table if exists {incremental}_incremental")
