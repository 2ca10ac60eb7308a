"""The batch layer within bounded memory, on the real engines.

A history whose deduplication in one query exceeds the memory a batch query may use
(`[batch] query_max_memory`) is recomputed in event_id slices, and equals the truth; so are the
copies a run judges once for all its views. The truth
is counted in plain Python from the rows the test writes.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pyarrow as pa
import pytest

from lambdalake import serving, state
from lambdalake.batch import (Boundary, Layers, count_copies, counted_table, drop_counted_copies, drop_layers,
                              ensure_serving, history_rows, recompute_by_name, recompute_view, served,
                              slice_count)
from lambdalake.catalog import load_catalog
from lambdalake.config import Config, data_size_bytes
from lambdalake.derive import batch_select_sql
from lambdalake.query import run_query
from lambdalake.tables import conform, ensure_table
from lambdalake.views import View, lambda_views
from tests.integration.conftest import aggregated_counted_copies

#: distinct events in the history; with their copies, about 1.2M rows
EVENTS = 900_000
#: one query's dedup over this history takes ~95 MB (measured), so it fails; a quarter of it fits
LIMIT = "60MB"
TYPES = ["page_view", "search", "click", "add_to_cart", "purchase"]
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
#: every copy counts once: the first copy 0-5 h after START, the second 30 s later (within the
#: 1 h horizon, so it is ignored), a third 2 h after the first (beyond it: a distinct event)
NEAR_COPY_EVERY, FAR_COPY_EVERY = 3, 40


def generate_history() -> tuple[pa.Table, Counter[tuple[datetime, str]]]:
    """The master dataset's rows, and the truth of events_per_type: counted copies per (minute, type)."""
    index = np.arange(EVENTS)
    seconds = (index * 18_000 // EVENTS).astype("int64")  # five hours of event time
    copies = [(index, 0), (index[index % NEAR_COPY_EVERY == 0], 30), (index[index % FAR_COPY_EVERY == 0], 7200)]
    ids = np.concatenate([i for i, _ in copies])
    delay = np.concatenate([np.full(len(i), d) for i, d in copies])
    event_time = np.datetime64(START.replace(tzinfo=None), "s") + seconds[ids].astype("timedelta64[s]")
    ingest_time = event_time + (2 + delay).astype("timedelta64[s]")
    types = np.array(TYPES)[ids % len(TYPES)]
    n = len(ids)
    table = pa.table({
        "event_id": pa.array([f"event-{i}" for i in ids], pa.string()),
        "user_id": pa.array(["user-1"] * n, pa.string()),
        "session_id": pa.array(["session-1"] * n, pa.string()),
        "event_type": pa.array(types, pa.string()),
        "page": pa.array(["/"] * n, pa.string()),
        "product_id": pa.array([None] * n, pa.string()),
        "amount": pa.array([None] * n, pa.decimal128(12, 2)),
        "event_time": pa.array(event_time.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        "properties": pa.array([None] * n, pa.map_(pa.string(), pa.string())),
        "ingest_time": pa.array(ingest_time.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        "kafka_partition": pa.array(np.zeros(n), pa.int32()),
        "kafka_offset": pa.array(np.arange(n), pa.int64()),
    })
    truth: Counter[tuple[datetime, str]] = Counter()
    counted = np.concatenate([copies[0][0], copies[2][0]])
    for second, kind in zip(seconds[counted].tolist(), types[np.concatenate([copies[0][0], copies[2][0]])].tolist()):
        truth[(START + timedelta(seconds=second - second % 60), kind)] += 1
    return table, truth


@pytest.fixture(scope="module")
def history(config: Config) -> Iterator[tuple[Layers, Boundary, Counter[tuple[datetime, str]]]]:
    suffix = uuid.uuid4().hex[:8]
    layers = Layers(topic=config.kafka.events_topic, events_table=f"raw.test_memory_events_{suffix}",
                    rejected_table=f"raw.test_memory_rejected_{suffix}", suffix=f"__m{suffix}")
    rows, truth = generate_history()
    table = ensure_table(config, "raw.events", layers.events_table)
    table.append(conform(rows, table))
    ensure_serving(config, layers, ["events_per_type"])
    boundary = Boundary(START + timedelta(hours=12), table.refresh().current_snapshot().snapshot_id)
    yield layers, boundary, truth
    drop_layers(config, layers)


def events_per_type() -> View:
    return next(v for v in lambda_views() if v.name == "events_per_type")


def as_counter(rows: list[list]) -> Counter[tuple[datetime, str]]:  # type: ignore[type-arg]
    return Counter({(bucket.astimezone(timezone.utc), kind): count for bucket, kind, count in rows})


def test_one_query_over_the_history_exceeds_the_batch_memory(config: Config, history) -> None:  # type: ignore[no-untyped-def]
    """The premise: one query's dedup of this history needs more than LIMIT. Measured from the
    query's peak, not from Trino refusing it: the coordinator enforces a session's query_max_memory
    by polling (about once a second), and a query of about a second sometimes ends first (seen here
    1 time in 3)."""
    layers, boundary, _ = history
    marker = f"-- premise {uuid.uuid4().hex}"
    sql = batch_select_sql(events_per_type(), config.iceberg.catalog_name, layers.events_table,
                           boundary.events_snapshot, boundary.moment, layers.horizon(config)) + f"\n{marker}"
    run_query(config, sql)
    queries = httpx.get(f"http://{config.host}:{config.trino.port}/v1/query", headers={"X-Trino-User": "test"},
                        timeout=30).json()
    [peak] = [data_size_bytes(q["queryStats"]["peakUserMemoryReservation"], "peak")
              for q in queries if marker in q["query"]]
    assert peak > data_size_bytes(LIMIT, "limit"), f"the dedup peaked at {peak} B, within {LIMIT}"


def test_the_recompute_slices_the_history_to_fit_and_equals_the_truth(config: Config, history) -> None:  # type: ignore[no-untyped-def]
    layers, boundary, truth = history
    limited = dataclasses.replace(config, batch=dataclasses.replace(config.batch, query_max_memory=LIMIT))
    view = events_per_type()
    assert slice_count(limited, history_rows(config, layers.events_table, boundary.events_snapshot)) > 1
    table = recompute_view(limited, layers, view, boundary)
    assert table == served(config, layers, view).batch_table(boundary.moment)
    assert as_counter(run_query(config, f"select * from {table}")[1]) == truth
    served_rows = run_query(config, f"select event_time_bucket, event_type, events from {layers.serving(view)}")[1]
    assert as_counter(served_rows) == truth
    assert not run_query(config, "select table_name from information_schema.tables where table_schema = 'batch' "
                                 "and table_name like ?", [f"%{layers.suffix}__slices"])[1]


def test_an_incremental_run_after_it_also_fits_and_equals_the_truth(config: Config, history) -> None:  # type: ignore[no-untyped-def]
    layers, boundary, truth = history
    limited = dataclasses.replace(config, batch=dataclasses.replace(config.batch, query_max_memory=LIMIT))
    view = events_per_type()
    recompute_view(limited, layers, view, boundary)  # the full run, if this test runs alone
    # an hour after B: new events, and copies of the history's (arrived hours after their first copy: they count)
    rows, _ = generate_history()
    arrived = rows.slice(0, 50_000)
    moved = pa.array(np.datetime64(boundary.moment.replace(tzinfo=None), "us")
                     + (np.arange(len(arrived)) * 60_000).astype("timedelta64[us]"), pa.timestamp("us", tz="UTC"))
    arrived = arrived.set_column(arrived.schema.get_field_index("ingest_time"), "ingest_time", moved)
    arrived = arrived.set_column(arrived.schema.get_field_index("kafka_offset"), "kafka_offset",
                                 pa.array(np.arange(len(rows), len(rows) + len(arrived)), pa.int64()))
    table = load_catalog(config).load_table(layers.events_table)
    table.append(conform(arrived, table))
    later = Boundary(boundary.moment + timedelta(hours=1), table.refresh().current_snapshot().snapshot_id)
    expected = truth + Counter((START + timedelta(seconds=(t.timestamp() - START.timestamp()) // 60 * 60), kind)
                               for t, kind in zip(arrived.column("event_time").to_pylist(),
                                                  arrived.column("event_type").to_pylist()))
    table_name = recompute_view(limited, layers, view, later)
    step = state.live_step(config, layers.serving(view))
    assert step is not None and step.run_mode == "incremental", step
    assert as_counter(run_query(config, f"select * from {table_name}")[1]) == expected


def test_a_run_judges_the_copies_once_in_slices_and_the_view_aggregates_them(config: Config, history) -> None:  # type: ignore[no-untyped-def]
    """As the DAG runs it: count_copies writes the copies that count in slices (the dedup does not
    fit in one query), the view's batch table is an aggregate of them, and it equals what the view
    judged alone (the incremental run above, which equalled the truth)."""
    layers, _, _ = history
    limited = dataclasses.replace(config, batch=dataclasses.replace(config.batch, query_max_memory=LIMIT))
    view = events_per_type()
    live = state.live_step(config, layers.serving(view))
    assert live is not None and live.boundary is not None and live.events_snapshot is not None
    judged_alone = as_counter(run_query(config, f"select * from {live.batch_table}")[1])
    latest = Boundary(live.boundary, live.events_snapshot)
    counted = count_copies(limited, layers, latest, [view.name], full=True)
    assert counted is not None and counted.ingest_from is None and counted.slices > 1, counted
    assert counted == state.counted_copies(config, counted_table(layers))
    # what the truth counts: every first copy and every copy 2 h after it (the near copies do not count)
    _, [[rows]] = run_query(config, f"select count(*) from {counted_table(layers)}")
    assert rows == counted.rows == sum(judged_alone.values())
    # a retried task finds its copies judged and writes nothing
    assert count_copies(limited, layers, latest, [view.name], full=True) == counted

    started = datetime.now(timezone.utc)
    table_name = recompute_view(limited, layers, view, latest, full=True)
    step = state.live_step(config, layers.serving(view))
    assert step is not None and step.run_mode == "full" and step.slices == counted.slices, step
    assert as_counter(run_query(config, f"select * from {table_name}")[1]) == judged_alone
    assert aggregated_counted_copies(config, layers, [table_name], started), "the view did not aggregate the counted copies"

    drop_counted_copies(config, layers)
    assert state.counted_copies(config, counted_table(layers)) is None
    assert not load_catalog(config).table_exists(counted_table(layers))


def test_a_run_at_the_live_b_judges_nothing_and_writes_nothing(config: Config, history) -> None:  # type: ignore[no-untyped-def]
    """A run whose B is already live (an asset event within the same minute, a retried DAG run) or
    older than it has nothing to do: no copies judged over the whole history, no batch table, no
    step in the state store; the DAG's task says why, and emits no asset event."""
    layers, first, _ = history
    view = events_per_type()
    recompute_view(config, layers, view, first)  # the first run, if this test runs alone
    live = state.live_step(config, layers.serving(view))
    assert live is not None and live.boundary is not None and live.events_snapshot is not None
    steps = serving.batch_steps(config, layers.serving(view))
    params = {"events_table": layers.events_table, "rejected_table": layers.rejected_table, "topic": layers.topic,
              "suffix": layers.suffix}
    for moment, why in ((live.boundary, "nothing arrived below it to add"),
                        (live.boundary - timedelta(minutes=1), "from a later B")):
        boundary = Boundary(moment, live.events_snapshot)
        assert count_copies(config, layers, boundary, [view.name]) is None
        assert state.counted_copies(config, counted_table(layers)) is None
        assert not load_catalog(config).table_exists(counted_table(layers))
        assert recompute_view(config, layers, view, boundary) == live.batch_table
        chosen = {"moment": moment.isoformat(), "snapshot": live.events_snapshot}
        done = recompute_by_name(config, params, view.name, chosen)
        assert done is not None and why in str(done.get("skipped")), done
        assert serving.batch_steps(config, layers.serving(view)) == steps
    # a full run at the live B still recomputes (after fixing data or a view's logic)
    assert count_copies(config, layers, Boundary(live.boundary, live.events_snapshot), [view.name], full=True) is not None
    drop_counted_copies(config, layers)
