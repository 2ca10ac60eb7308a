"""The batch layer: choose the boundary B, recompute each lambda view below it, swap serving.

B is a whole ingest minute below which the master dataset is provably complete: per Kafka
partition, ingest times only grow (the broker stamps them), and the ingest job commits a
prefix of each partition (events, rejected records and the heartbeats' positions). So a
partition whose newest ingested record has ingest time M holds every record before M; one
whose every offset is ingested holds every record up to now.
B = the minute floor of the smallest of those, over all partitions.

Each run writes a new table `batch.<view>__b<B>` (one Iceberg commit, by Trino's CREATE TABLE
AS), then replaces `serving.<view>` with one CREATE OR REPLACE VIEW naming that table and B:
readers see old batch + old B or new batch + new B, never a mix. A run killed anywhere leaves
serving as it was; the next run redoes its work (every step is idempotent).

A view is recomputed with the logic of the version serving answers from: its base (the
definition pinned in `speed.<view>`), or a reprocessed version N (lambdalake.kappa), whose
tables are `speed.<view>__v<N>` and `batch.<view>__v<N>__b<B>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lambdalake import names, offsets
from lambdalake.catalog import load_catalog, serving_lock
from lambdalake.config import Config
from lambdalake.derive import batch_select_sql, serving_view_sql, trino_timestamp
from lambdalake.errors import EngineError
from lambdalake.query import run_query
from lambdalake.tables import heartbeats_table
from lambdalake.versions import base_table, live_version, pinned_view, version_table
from lambdalake.views import INGEST_BUCKET_MINUTES, View, lambda_views

BOUNDARY_FORMAT = "%Y-%m-%d %H:%M:%S"


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

    @property
    def speed_table(self) -> str:
        return f"speed.{self.stem}"

    def batch_table(self, boundary: datetime) -> str:
        return f"batch.{self.stem}__b{boundary:%Y%m%d%H%M}"


def served(config: Config, layers: Layers, view: View) -> Served:
    """The version of the view serving answers from: a reprocessed one, else the base (tests' suffixed
    tables are always the base). Its definition is the one pinned in its speed table."""
    number = None if layers.suffix else live_version(config, view.name)
    table = base_table(view.name, layers.suffix) if number is None else version_table(view.name, number)
    return Served(pinned_view(config, table) or view, table.split(".", 1)[1])


@dataclass(frozen=True)
class Boundary:
    moment: datetime
    #: the snapshot of the master dataset every view of this run is computed from
    events_snapshot: int

    @property
    def literal(self) -> str:
        return self.moment.strftime(BOUNDARY_FORMAT)


def floor_to_bucket(moment: datetime) -> datetime:
    minutes = INGEST_BUCKET_MINUTES
    floored = moment.astimezone(timezone.utc).replace(second=0, microsecond=0)
    return floored - timedelta(minutes=floored.minute % minutes)


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


def batch_tables(config: Config, stem: str) -> list[str]:
    """batch.<stem>__b<B> for every B, oldest first."""
    prefix = f"{stem}__b"
    _, rows = run_query(config, "show tables from batch")
    return sorted(f"batch.{name}" for (name,) in rows if name.startswith(prefix) and name[len(prefix):].isdigit())


def _boundary_of(table: str) -> datetime:
    return datetime.strptime(table.rsplit("__b", 1)[1], "%Y%m%d%H%M").replace(tzinfo=timezone.utc)


def current_boundary(config: Config, layers: Layers, view: View) -> datetime | None:
    """The boundary serving uses now: that of the served version's newest batch table (None before any run)."""
    tables = batch_tables(config, served(config, layers, view).stem)
    return _boundary_of(tables[-1]) if tables else None


def recompute_view(config: Config, layers: Layers, view: View, boundary: Boundary) -> str | None:
    """Write the view's batch table below B, then point serving at it. Idempotent; returns the table.

    Returns None when a reprocessing switched serving to another version meanwhile: that version
    is recomputed by the next run.
    """
    catalog = config.iceberg.catalog_name
    target = served(config, layers, view)
    tables = batch_tables(config, target.stem)
    if tables and _boundary_of(tables[-1]) > boundary.moment:
        return tables[-1]  # never move B backwards
    table = target.batch_table(boundary.moment)
    select = batch_select_sql(target.view, catalog, layers.events_table, boundary.events_snapshot, boundary.literal,
                              layers.horizon(config))
    namespace, name = table.split(".")
    run_query(config, f'create or replace table "{catalog}"."{namespace}"."{name}" as\n{select}')
    with serving_lock(config, layers.serving(view)):
        if served(config, layers, view) != target:
            run_query(config, f"drop table if exists {table}")
            return None
        run_query(config, serving_view_sql(target.view, catalog, layers.serving(view), target.speed_table, table,
                                           boundary.literal))
    # keep the previous table a run longer: a query that started before the swap may still read it
    for old in batch_tables(config, target.stem)[:-2]:
        run_query(config, f"drop table if exists {old}")
    return table


def expire_speed_rows(config: Config, layers: Layers, view: View) -> datetime | None:
    """Delete the view's speed rows that no serving query can read any more; return their limit.

    Serving reads speed rows at or after B. The previous batch table (and its B) is kept a run
    longer for queries that began before the last swap, so only rows below that previous B go.
    Flink only appends newer ingest buckets meanwhile, so the delete never touches its rows.
    """
    target = served(config, layers, view)
    tables = batch_tables(config, target.stem)
    if len(tables) < 2:
        return None
    limit = _boundary_of(tables[-2])
    namespace, name = target.speed_table.split(".")
    run_query(config, f'delete from "{namespace}"."{name}" '
                      f"where ingest_bucket < {trino_timestamp(limit.strftime(BOUNDARY_FORMAT))}")
    return limit


def ensure_serving(config: Config, layers: Layers, views: list[str] | None = None) -> None:
    """Create serving.<view> as the speed layer alone for every lambda view (or those named) that has none yet."""
    from lambdalake.speed import create_base_table

    _, rows = run_query(config, "show tables from serving")
    existing = {name for (name,) in rows}
    for view in lambda_views():
        if (views and view.name not in views) or f"{view.name}{layers.suffix}" in existing:
            continue
        table = create_base_table(config, view, layers.suffix)
        run_query(config, serving_view_sql(served(config, layers, view).view, config.iceberg.catalog_name,
                                           layers.serving(view), table, None, None))


def run_once(config: Config, layers: Layers, views: list[str] | None = None) -> dict[str, str | None]:
    """One whole batch run, as the DAG does it: boundary, then each view. Returns view -> table."""
    boundary = choose_boundary(config, layers)
    if boundary is None:
        return {}
    chosen = [v for v in lambda_views() if not views or v.name in views]
    tables = {view.name: recompute_view(config, layers, view, boundary) for view in chosen}
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


def recompute_by_name(config: Config, params: dict[str, object], view_name: str,
                      chosen: dict[str, object]) -> str | None:
    view = _lambda_view(view_name)
    boundary = Boundary(datetime.fromisoformat(str(chosen["moment"])), int(chosen["snapshot"]))  # type: ignore[arg-type]
    return recompute_view(config, layers_from(config, params), view, boundary)
