"""The batch layer: choose the boundary B, recompute each lambda view below it, swap serving.

B is a whole ingest minute below which the master dataset is provably complete: per Kafka
partition, ingest times only grow (the broker stamps them), and the ingest job commits a
prefix of each partition (events, rejected records and the heartbeats' positions). So a
partition whose newest ingested record has ingest time M holds every record before M; one
whose every offset is ingested holds every record up to now.
B = the minute floor of the smallest of those, over all partitions.

Each run writes a new table `batch.<view>__b<B>` (one Iceberg commit, by Trino's CREATE TABLE
AS), then has lambdalake.serving replace `serving.<view>` with one CREATE OR REPLACE VIEW naming
that table and B (readers see old batch + old B or new batch + new B, never a mix) and record the
step, with B before and after and the rows written, in the state store. A run killed anywhere leaves
serving as it was; the next run redoes its work (every step is idempotent). After the swap, the
run records how far the speed layer's answers were from the new batch table's (lambdalake.accuracy).

A run is incremental by default (plan_run says when it is full): the copies that reached Kafka
from the previous run's B on are judged by the dedup rule against the master dataset from one
horizon before that B (all the rule looks at), and their partial aggregates are added to the
previous batch table. Only the event-time buckets they touch are re-aggregated; the others are
carried over. The result equals a full recompute at the same B, row for row
(tests/integration/test_batch_incremental.py), at a cost that grows with what arrived.

The dedup rule does not depend on the view, and it is what a batch query spends its time on. So
a run judges the copies once, for all its views (count_copies): it writes the copies that count to
`batch.<schema>__<events table>__counted` and records in the state store what they were judged
from; each view's batch table is then an aggregate of that table, read at the recorded snapshot.
A view the record does not cover (another B, horizon or start) judges the copies itself, in the
same SQL (lambdalake.derive.batch_select_sql). The run drops the table when its views are done.

Memory stays bounded at any history size: when the dedup of the whole history would not fit in
the memory a batch query may use (`[batch] query_max_memory`), the events are split into slices by
a hash of their event_id. All copies of an event fall in one slice, so each slice is deduplicated
alone; each slice's partial aggregates are appended to `batch.<view>__slices`, and one last
CREATE TABLE AS merges them into the batch table. Readers never see the slices: the swap is as above.

A view is recomputed with the logic of the version serving answers from: its base (the
definition pinned in `speed.<view>`), or a reprocessed version N (lambdalake.kappa), whose
tables are `speed.<view>__v<N>` and `batch.<view>__v<N>__b<B>`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lambdalake import accuracy, names, offsets, serving, state
from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.derive import (batch_from_counted_sql, batch_select_sql, counted_columns, counted_copies_sql,
                               incremental_merge_sql, merge_slices_sql)
from lambdalake.errors import EngineError, QueryError
from lambdalake.names import trino_table
from lambdalake.query import run_delete, run_query
from lambdalake.tables import heartbeats_table
from lambdalake.versions import base_table, pinned_view, version_table
from lambdalake.views import View, floor_to_bucket, lambda_views


@dataclass(frozen=True)
class Layers:
    """The tables one deployment of the views uses; the default is the platform's own."""

    topic: str
    events_table: str = "raw.events"
    rejected_table: str = "raw.events_rejected"
    #: appended to speed, batch and serving table names (tests use their own)
    suffix: str = ""
    #: the dedup horizon in seconds; None means `[dedup] horizon` (it must be the speed job's)
    horizon_seconds: int | None = None

    @property
    def heartbeats_table(self) -> str:
        return heartbeats_table(self.events_table)

    def horizon(self, config: Config) -> int:
        return config.dedup.horizon_seconds if self.horizon_seconds is None else self.horizon_seconds

    def speed(self, view: View) -> str:
        return f"speed.{view.name}{self.suffix}"

    def serving(self, view: View) -> str:
        return f"serving.{view.name}{self.suffix}"



@dataclass(frozen=True)
class Served:
    """What serving.<view> is made of now: the logic of the version it answers from, and its tables."""

    view: View
    #: the tables' common name: speed.<stem> and batch.<stem>__b<B>
    stem: str
    #: the reprocessed version; None for the view's base
    version: int | None = None

    @property
    def speed_table(self) -> str:
        return f"speed.{self.stem}"

    def batch_table(self, boundary: datetime) -> str:
        return f"batch.{self.stem}__b{boundary:%Y%m%d%H%M}"

    @property
    def slices_table(self) -> str:
        """Where a sliced recompute collects its slices before merging them (one per view and version)."""
        return f"batch.{self.stem}__slices"


def served(config: Config, layers: Layers, view: View) -> Served:
    """The version of the view serving answers from (the state store says): a reprocessed one, else
    the base. Its definition is the one pinned in its speed table."""
    current = serving.live(config, layers.serving(view))
    number = None if current is None else current.version
    table = base_table(view.name, layers.suffix) if number is None else version_table(view.name, number)
    return Served(pinned_view(config, table) or view, table.split(".", 1)[1], number)


@dataclass(frozen=True)
class Boundary:
    moment: datetime
    #: the snapshot of the master dataset every view of this run is computed from
    events_snapshot: int


def complete_until(ingested: dict[int, tuple[int, datetime]], high_watermarks: dict[int, int],
                   now: datetime) -> datetime | None:
    """The instant below which every partition is completely in the master dataset, minute-floored.

    `ingested`: partition -> (largest offset, largest ingest time) found in the master dataset;
    `high_watermarks`: partition -> Kafka's next offset. None when no partition is known.
    """
    if not high_watermarks:
        return None
    limits = []
    for partition, next_offset in high_watermarks.items():
        offset, newest = ingested.get(partition, (-1, None))
        if offset >= next_offset - 1:
            limits.append(now)  # everything the partition holds is ingested
        elif newest is None:
            return None  # records exist, none ingested yet: nothing is known complete
        else:
            limits.append(newest)
    return floor_to_bucket(min(limits))


def choose_boundary(config: Config, layers: Layers) -> Boundary | None:
    """B for this run, with the snapshots it is computed from; None when nothing is complete yet."""
    now = datetime.now(timezone.utc)  # read before the watermarks: complete "up to now" is then safe
    high_watermarks = offsets.high_watermarks(config, layers.topic)
    catalog = load_catalog(config)
    if not (catalog.table_exists(layers.events_table) and catalog.table_exists(layers.rejected_table)):
        return None  # the ingest job has not run yet: there is no master dataset to recompute from
    # the positions-only tables first: the events snapshot, read last, then holds every event of
    # the checkpoints they hold (each checkpoint commits the three tables within milliseconds)
    parts = []
    for other in (layers.rejected_table, layers.heartbeats_table):
        snapshot = catalog.load_table(other).current_snapshot() if catalog.table_exists(other) else None
        if snapshot is not None:
            parts.append(f"select kafka_partition, kafka_offset, ingest_time from {other} "
                         f"for version as of {snapshot.snapshot_id}")
    events = catalog.load_table(layers.events_table).current_snapshot()
    if events is None:
        return None
    parts.append(f"select kafka_partition, kafka_offset, ingest_time from {layers.events_table} "
                 f"for version as of {events.snapshot_id}")
    _, rows = run_query(config, "select kafka_partition, max(kafka_offset), max(ingest_time) from ("
                                + " union all ".join(parts) + ") group by 1")
    ingested = {partition: (offset, newest) for partition, offset, newest in rows}
    moment = complete_until(ingested, high_watermarks, now)
    return None if moment is None else Boundary(moment, events.snapshot_id)


def current_boundary(config: Config, layers: Layers, view: View) -> datetime | None:
    """The boundary serving uses now (None before the served version's first batch run)."""
    current = serving.live(config, layers.serving(view))
    return None if current is None else current.boundary


#: query memory the dedup takes per master-dataset row, with headroom (about 1.5x): measured ~70 MiB
#: per query plus ~100 B per row of its slice (bench/batch_slices.py), 96-135 B per row at 10M-25M
#: events for one view's columns, and 160-164 B per row at 10M and 25M for count_copies, which keeps
#: the columns of every lambda view (bench/batch.py, BENCHMARKS.md)
DEDUP_BYTES_PER_ROW = 250


def slice_count(config: Config, rows: int) -> int:
    """How many event_id slices keep each batch query within the batch memory (1 while all fits)."""
    return max(1, math.ceil(rows * DEDUP_BYTES_PER_ROW / config.batch.memory_bytes(config.trino)))


def batch_session(config: Config) -> dict[str, str]:
    """Trino session properties of every batch query."""
    return {"query_max_memory": config.batch.query_max_memory} if config.batch.query_max_memory else {}


def history_rows(config: Config, events_table: str, snapshot: int) -> int:
    """The rows of the master dataset at a snapshot (its summary says; no scan)."""
    found = load_catalog(config).load_table(events_table).snapshot_by_id(snapshot)
    if found is None or found.summary is None:
        raise EngineError(f"snapshot {snapshot} of {events_table} is gone; a batch run reads the snapshot its "
                          "boundary was chosen from. Run it again")
    return int(found.summary.get("total-records", 0))


def _count_rows(config: Config, layers: Layers, boundary: Boundary, since: datetime) -> int:
    """The master dataset's rows an incremental run reads (from one horizon before since to B)."""
    _, rows = run_query(
        config, f"select count(*) from {trino_table(layers.events_table, config.iceberg.catalog_name)} "
                f"for version as of {int(boundary.events_snapshot)} "
                "where ingest_time >= ? and ingest_time < ?",
        [since - timedelta(seconds=layers.horizon(config)), boundary.moment], session=batch_session(config))
    return int(rows[0][0])


#: Trino query states before the end
RUNNING_STATES = ("QUEUED", "WAITING_FOR_RESOURCES", "DISPATCHING", "PLANNING", "STARTING", "RUNNING", "FINISHING")


def kill_stale_writes(config: Config, tables: list[str]) -> list[str]:
    """Kill the queries still writing these tables; return their ids.

    A run killed midway (its Airflow worker lost, say) leaves its current query running in Trino,
    whose commit would land in the tables the next run writes. The next run kills it first.
    """
    catalog = config.iceberg.catalog_name
    wanted = [trino_table(table, catalog) for table in tables]
    _, rows = run_query(config, "select query_id, query from system.runtime.queries where state in ("
                                + ", ".join(f"'{s}'" for s in RUNNING_STATES) + ")")
    stale = [query_id for query_id, text in rows
             if "system.runtime.queries" not in text and any(name in text for name in wanted)]
    for query_id in stale:
        if not re.fullmatch(r"\w+", query_id):  # CALL takes no bound parameters: Trino's own ids only
            raise EngineError(f"unexpected Trino query id {query_id!r}")
        try:
            run_query(config, f"call system.runtime.kill_query(query_id => '{query_id}', "
                              "message => 'left by a killed batch run; the next run rewrites its tables')")
        except QueryError as exc:
            # it ended between the listing and the kill: what it wrote, this run rewrites
            if "Target query is not running" not in str(exc):
                raise
    return stale


def plan_run(config: Config, layers: Layers, target: Served, *, full: bool = False) -> tuple[str, state.Step | None]:
    """Why this run is full, or why it is incremental and the live batch step it adds to.

    Incremental is the default; a run is full when asked to, when there is no batch table of this
    version to add to (its first run, or the table is gone), when the previous run applied another
    dedup horizon, or when the version's last full run is `[batch] full_recompute_every` old.
    """
    if full:
        return "full: asked for (the DAG's param full, or batch-run --full)", None
    previous = state.live_step(config, layers.serving(target.view))
    if (previous is None or previous.kind != "batch" or previous.speed_table != target.speed_table
            or previous.batch_table is None or previous.boundary is None):
        return "full: no batch table of this version to add to yet", None
    horizon = layers.horizon(config)
    if previous.horizon_seconds != horizon:
        return (f"full: the previous run applied a dedup horizon of {previous.horizon_seconds} s, this one "
                f"{horizon} s"), None
    last_full = next((s for s in serving.batch_steps(config, layers.serving(target.view), target.speed_table)
                      if s.run_mode == "full"), None)
    age = None if last_full is None or last_full.live_at is None else datetime.now(timezone.utc) - last_full.live_at
    if age is None or age.total_seconds() >= config.batch.full_recompute_seconds:
        when = "never" if age is None else f"{age.total_seconds() / 3600:.1f} h ago"
        return (f"full: the last full run was {when}; [batch] full_recompute_every = "
                f"{config.batch.full_recompute_every!r}"), None
    if not load_catalog(config).table_exists(previous.batch_table):
        return f"full: the previous batch table {previous.batch_table} is gone", None
    since = previous.boundary.astimezone(timezone.utc)
    return f"incremental: the copies that arrived from B={since:%Y-%m-%d %H:%M:%S} on", previous


def counted_table(layers: Layers) -> str:
    """The table where a batch run writes the copies that count of its master dataset, once for all its views."""
    schema, name = layers.events_table.split(".", 1)
    return f"batch.{schema}__{name}__counted"


def _covers(counted: state.CountedCopies | None, layers: Layers, view: View, boundary: Boundary, horizon: int,
            since: datetime | None) -> bool:
    """The recorded counted copies are the ones this view's run needs: same master dataset, snapshot,
    B and horizon, judged from `since` or earlier (a copy's judgement needs one horizon before it),
    with every column the view reads."""
    return (counted is not None and counted.events_table == layers.events_table
            and counted.events_snapshot == boundary.events_snapshot and counted.boundary == boundary.moment
            and counted.horizon_seconds == horizon
            and (counted.ingest_from is None or (since is not None and counted.ingest_from <= since))
            and counted_columns(view) <= set(counted.columns))


def count_copies(config: Config, layers: Layers, boundary: Boundary, views: list[str] | None = None, *,
                 full: bool = False, slices: int | None = None) -> state.CountedCopies | None:
    """Judge every copy below B by the dedup rule once for the run's views (those named, else every
    lambda view): write the copies that count to counted_table(layers) and record them in the state
    store. Returns the record, or None when no view needs copies judged.

    The copies are judged from the earliest ingest time a view's run needs: all of history when one
    of them is full (plan_run), else the earliest previous B. Views whose run will do nothing at this
    B (up_to_date) are left out: when every view is, nothing is judged. A record that covers that already
    (a retried task) is returned as it is. In event_id slices when the dedup needs them (slice_count).
    """
    horizon, catalog = layers.horizon(config), config.iceberg.catalog_name
    plans = [(target, plan_run(config, layers, target, full=full)[1])
             for target in (served(config, layers, view) for view in lambda_views() if not views or view.name in views)]
    # a view whose run will do nothing at this B (up_to_date) needs no copies judged
    plans = [(target, previous) for target, previous in plans
             if up_to_date(config, layers, target, boundary, previous) is None]
    if not plans:
        return None
    targets = [target for target, _ in plans]
    sinces = [None if previous is None else previous.boundary for _, previous in plans]
    since = None if None in sinces else min(s for s in sinces if s is not None)
    # the definitions serving answers from (a reprocessed version's may read other columns)
    columns = sorted(set().union(*(counted_columns(target.view) for target in targets)))
    table = counted_table(layers)
    existing = state.counted_copies(config, table)
    if (all(_covers(existing, layers, target.view, boundary, horizon, since) for target in targets)
            and load_catalog(config).table_exists(table)):
        return existing
    started = time.monotonic()
    kill_stale_writes(config, [table])
    if slices is None:
        rows_read = (history_rows(config, layers.events_table, boundary.events_snapshot) if since is None
                     else _count_rows(config, layers, boundary, since))
        slices = slice_count(config, rows_read)

    def select(event_slice: tuple[int, int] | None) -> str:
        return counted_copies_sql(catalog, layers.events_table, boundary.events_snapshot, boundary.moment, horizon,
                                  event_slice, since, columns)

    session = batch_session(config)
    run_query(config, f"create or replace table {trino_table(table, catalog)} as\n"
                      f"{select((0, slices) if slices > 1 else None)}", session=session)
    for index in range(1, slices):
        run_query(config, f"insert into {trino_table(table, catalog)}\n{select((index, slices))}", session=session)
    snapshot = load_catalog(config).load_table(table).current_snapshot()
    if snapshot is None:
        raise EngineError(f"{table} has no snapshot after its CREATE TABLE AS; run the batch again")
    record = state.CountedCopies(table, layers.events_table, boundary.events_snapshot, boundary.moment, horizon,
                                 since, snapshot.snapshot_id, columns, slices,
                                 int((snapshot.summary or {}).get("total-records", 0)) or None,
                                 round(time.monotonic() - started, 2))
    state.counted_copies_written(config, record)
    return record


def drop_counted_copies(config: Config, layers: Layers) -> None:
    """Drop the run's counted copies once its views are done (a later run judges its own): forget the
    record first, so that no view reads a table about to go."""
    table = counted_table(layers)
    state.forget_counted_copies(config, table)
    run_query(config, f"drop table if exists {trino_table(table, config.iceberg.catalog_name)}")


def write_batch_table(config: Config, layers: Layers, target: Served, boundary: Boundary, table: str,
                      slices: int | None = None, previous: state.Step | None = None,
                      reason: str = "full") -> tuple[int | None, state.BatchRun]:
    """Write the view's batch table below B; return its rows and what the run did.

    From the run's counted copies when the state store's record covers this view (count_copies);
    otherwise it judges the copies itself, in event_id slices when the dedup needs them.
    Full (previous None): every copy below B. Incremental: previous's batch table, with the copies
    that arrived from its B on added (only the event-time buckets they touch are re-aggregated).
    `slices` overrides the count slice_count chooses (tests use it), and makes the view judge its own copies.
    """
    catalog, session = config.iceberg.catalog_name, batch_session(config)
    kill_stale_writes(config, [table, target.slices_table])
    horizon = layers.horizon(config)
    since = None if previous is None else previous.boundary
    mode = "full" if previous is None else "incremental"
    counted = None if slices is not None else state.counted_copies(config, counted_table(layers))
    shared = counted if _covers(counted, layers, target.view, boundary, horizon, since) else None
    if shared is None and slices is None:
        rows_read = (history_rows(config, layers.events_table, boundary.events_snapshot) if since is None
                     else _count_rows(config, layers, boundary, since))
        slices = slice_count(config, rows_read)

    def select(event_slice: tuple[int, int] | None) -> str:
        if shared is not None:  # the run's counted copies: an aggregate, no dedup, no slices
            return batch_from_counted_sql(target.view, catalog, shared.table_name, shared.table_snapshot, since)
        return batch_select_sql(target.view, catalog, layers.events_table, boundary.events_snapshot,
                                boundary.moment, horizon, event_slice, since)

    if shared is not None:
        slices = 1  # the view reads the counted copies whole; they were judged in shared.slices slices
    run = state.BatchRun(mode, reason, horizon, since, slices if shared is None else shared.slices)  # type: ignore[arg-type]
    if previous is None and slices == 1:
        _, rows = run_query(config, f"create or replace table {trino_table(table, catalog)} as\n{select(None)}",
                            session=session)
        return (rows[0][0] if rows else None), run
    staging = trino_table(target.slices_table, catalog)
    # one table per view, replaced by the next run: a run killed midway leaves nothing else behind
    run_query(config, f"create or replace table {staging} as\n{select((0, slices) if slices > 1 else None)}",
              session=session)
    for index in range(1, slices):
        run_query(config, f"insert into {staging}\n{select((index, slices))}", session=session)
    if previous is None:
        merge = merge_slices_sql(target.view, catalog, target.slices_table)
    else:
        merge = incremental_merge_sql(target.view, catalog, previous.batch_table, target.slices_table)  # type: ignore[arg-type]
        _, touched = run_query(config, f"select count(distinct event_time_bucket), min(event_time_bucket), "
                                       f"max(event_time_bucket) from {staging}")
        run = dataclasses.replace(run, buckets_recomputed=touched[0][0], buckets_first=touched[0][1],
                                  buckets_last=touched[0][2])
    _, rows = run_query(config, f"create or replace table {trino_table(table, catalog)} as\n{merge}", session=session)
    run_query(config, f"drop table {staging}")
    return (rows[0][0] if rows else None), run


def up_to_date(config: Config, layers: Layers, target: Served, boundary: Boundary,
               previous: state.Step | None) -> str | None:
    """Why the view's run at this B has nothing to do, or None when it has: serving already answers
    from a later B (B never moves backwards), or from this very B and the run would add to it
    (previous, from plan_run: nothing arrived to add). A full run at the live B recomputes it."""
    current = serving.live(config, layers.serving(target.view))
    if current is None or current.boundary is None or current.speed_table != target.speed_table:
        return None
    live_b = current.boundary.astimezone(timezone.utc)
    if current.boundary > boundary.moment:
        return f"serving already answers from a later B={live_b:%Y-%m-%d %H:%M:%S}"
    if previous is not None and current.boundary == boundary.moment:
        return f"serving already answers from B={live_b:%Y-%m-%d %H:%M:%S}, and nothing arrived below it to add"
    return None


def recompute_view(config: Config, layers: Layers, view: View, boundary: Boundary,
                   airflow_run_id: str | None = None, slices: int | None = None, *, full: bool = False) -> str | None:
    """Write the view's batch table below B, then point serving at it. Idempotent; returns the table.

    Incremental unless `full` or plan_run says otherwise. Returns None when a reprocessing
    switched serving to another version meanwhile: that version is recomputed by the next run.
    """
    target = served(config, layers, view)
    current = serving.live(config, layers.serving(view))
    reason, previous = plan_run(config, layers, target, full=full)
    if current is not None and up_to_date(config, layers, target, boundary, previous) is not None:
        return current.batch_table
    table = target.batch_table(boundary.moment)
    started = datetime.now(timezone.utc)
    rows_written, run = write_batch_table(config, layers, target, boundary, table, slices, previous, reason)
    with serving.lock(config, layers.serving(view)):
        live_now = serving.live(config, layers.serving(view))
        if served(config, layers, view) != target or (
                previous is not None and (live_now is None or live_now.step_id != previous.id)):
            # another version went live, or another run swapped first (this one added to a table
            # that is no longer live): the next run starts from what is live then
            if live_now is None or live_now.batch_table != table:
                run_query(config, f"drop table if exists {trino_table(table)}")
            return None
        serving.publish(config, target.view, layers.serving(view), kind="batch", speed_table=target.speed_table,
                        version=target.version, batch_table=table, boundary=boundary.moment,
                        events_snapshot=boundary.events_snapshot, rows_written=rows_written,
                        airflow_run_id=airflow_run_id, started_at=started, run=run)
    same = current is not None and current.speed_table == target.speed_table
    accuracy.record(config, target.view, layers.serving(view), target.speed_table,
                    current.batch_table if same else None, current.boundary if same else None,  # type: ignore[union-attr]
                    table, boundary.moment)
    # keep the previous table a run longer: a query that started before the swap may still read it
    serving.drop_batch_tables(config, layers.serving(view), keep=2)
    return table


def expire_speed_rows(config: Config, layers: Layers, view: View) -> datetime | None:
    """Delete the view's speed rows that no serving query can read any more; return their limit.

    Serving reads speed rows at or after B. The previous batch table (and its B) is kept a run
    longer for queries that began before the last swap, so only rows below that previous B go.
    Flink only appends newer ingest buckets meanwhile, so the delete never touches its rows.
    """
    target = served(config, layers, view)
    boundaries = sorted({step.boundary for step in serving.batch_steps(config, layers.serving(view),
                                                                        target.speed_table) if step.boundary},
                        reverse=True)
    if len(boundaries) < 2:
        return None
    limit = boundaries[1]
    run_delete(config, f"delete from {trino_table(target.speed_table)} where ingest_bucket < ?", [limit])
    return limit


def ensure_serving(config: Config, layers: Layers, views: list[str] | None = None) -> None:
    """Create serving.<view> as the speed layer alone for every lambda view (or those named) that has none yet."""
    from lambdalake.speed import create_base_table

    for view in lambda_views():
        if (views and view.name not in views) or serving.live(config, layers.serving(view)) is not None:
            continue
        table = create_base_table(config, view, layers.suffix).table_name
        with serving.lock(config, layers.serving(view)):
            if serving.live(config, layers.serving(view)) is None:
                serving.publish(config, served(config, layers, view).view, layers.serving(view), kind="create",
                                speed_table=table)


def drop_layers(config: Config, layers: Layers) -> None:
    """Drop a deployment's serving views and purge its speed, batch and raw tables: for the tests and
    benches that deploy layers of their own (never the platform's, whose tables hold history)."""
    if not layers.suffix or layers.events_table == Layers.events_table:
        raise EngineError(f"drop_layers refuses layers that share the platform's tables: {layers}; give them "
                          "a suffix and an events table of their own")
    for view in lambda_views():
        serving.drop(config, layers.serving(view))
    state.forget_counted_copies(config, counted_table(layers))
    tables = [counted_table(layers)] + [table for view in lambda_views()
              for table in (layers.speed(view), Served(view, layers.speed(view).split(".", 1)[1]).slices_table)]
    tables += [layers.events_table, layers.rejected_table, layers.heartbeats_table]

    def purge(table: str) -> None:
        catalog = load_catalog(config)
        if catalog.table_exists(table):
            catalog.purge_table(table)

    # a purge deletes its table's files one request at a time, which adds up on the object store
    # (tests/cluster's teardown: 33 s with the 11 tables one after another, 20 s with this)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(purge, tables))
    for view in lambda_views():
        state.speed_table_dropped(config, layers.speed(view))
    if load_catalog(config).table_exists(accuracy.META_TABLE):
        run_delete(config, f"delete from {trino_table(accuracy.META_TABLE)} where view in ("
                           + ", ".join("?" for _ in lambda_views()) + ")", [layers.serving(v) for v in lambda_views()])


def run_once(config: Config, layers: Layers, views: list[str] | None = None, *,
             full: bool = False) -> dict[str, str | None]:
    """One whole batch run, as the DAG does it: boundary, then each view. Returns view -> table."""
    boundary = choose_boundary(config, layers)
    if boundary is None:
        return {}
    chosen = [v for v in lambda_views() if not views or v.name in views]
    count_copies(config, layers, boundary, views, full=full)
    try:
        tables = {view.name: recompute_view(config, layers, view, boundary, full=full) for view in chosen}
    finally:
        drop_counted_copies(config, layers)
    for view in chosen:
        expire_speed_rows(config, layers, view)
    return tables


def layers_from(config: Config, params: dict[str, object]) -> Layers:
    """Layers from the DAG's params (validated by Airflow's form, checked again here)."""
    return Layers(topic=names.topic_name(params.get("topic") or config.kafka.events_topic),
                  events_table=names.table_name(params.get("events_table") or "raw.events", "events_table"),
                  rejected_table=names.table_name(params.get("rejected_table") or "raw.events_rejected",
                                                  "rejected_table"),
                  suffix=names.suffix(params.get("suffix") or ""))


def _lambda_view(name: str) -> View:
    return next(v for v in lambda_views() if v.name == name)


def expire_by_name(config: Config, params: dict[str, object], view_name: str) -> str | None:
    limit = expire_speed_rows(config, layers_from(config, params), _lambda_view(view_name))
    return None if limit is None else limit.isoformat()


def count_copies_by_name(config: Config, params: dict[str, object], views: list[str],
                         chosen: dict[str, object]) -> dict[str, object] | None:
    """count_copies for the DAG; returns what it recorded (for its log), or None."""
    boundary = Boundary(datetime.fromisoformat(str(chosen["moment"])), int(chosen["snapshot"]))  # type: ignore[arg-type]
    counted = count_copies(config, layers_from(config, params), boundary, views, full=bool(params.get("full")))
    return None if counted is None else {
        "table": counted.table_name, "snapshot": counted.table_snapshot, "rows": counted.rows,
        "ingest_from": counted.ingest_from.isoformat() if counted.ingest_from else None,
        "slices": counted.slices, "seconds": counted.seconds}


def drop_counted_by_name(config: Config, params: dict[str, object]) -> None:
    drop_counted_copies(config, layers_from(config, params))


def recompute_by_name(config: Config, params: dict[str, object], view_name: str,
                      chosen: dict[str, object], airflow_run_id: str | None = None) -> dict[str, object] | None:
    """recompute_view for the DAG; returns what the step did (for its log and asset event), or None.
    A view whose run has nothing to do at this B gets {"view", "skipped": why} (up_to_date)."""
    view = _lambda_view(view_name)
    layers = layers_from(config, params)
    boundary = Boundary(datetime.fromisoformat(str(chosen["moment"])), int(chosen["snapshot"]))  # type: ignore[arg-type]
    full = bool(params.get("full"))
    target = served(config, layers, view)
    if (why := up_to_date(config, layers, target, boundary, plan_run(config, layers, target, full=full)[1])) is not None:
        return {"view": view_name, "skipped": why}
    table = recompute_view(config, layers, view, boundary, airflow_run_id, full=full)
    if table is None:
        return None
    step = next(s for s in serving.batch_steps(config, layers.serving(view)) if s.batch_table == table)
    return {"view": view_name, "serving_view": layers.serving(view), "batch_table": table,
            "boundary": step.boundary.isoformat() if step.boundary else None,
            "boundary_before": step.boundary_before.isoformat() if step.boundary_before else None,
            "rows": step.rows_written, "seconds": step.seconds, "mode": step.run_mode, "reason": step.run_reason,
            "buckets_recomputed": step.buckets_recomputed}
