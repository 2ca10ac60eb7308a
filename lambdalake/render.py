"""A view's SQL in each layer, as a person reads it: `lambdalake views render` and the files in sql/.

Every shipped view's SQL is committed under `sql/<layer>/<view>.sql` (speed: Flink SQL; batch and
serving: Trino SQL), made by the same functions the jobs and DAGs run (lambdalake.derive), so
the folder shows what runs. The values a run fills in (the boundary B, the master dataset's
snapshot) are shown as the fixed examples below; the dedup horizon and the speed window are the
configured ones. `make sql` writes the files again; a unit test fails when one is stale.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.derive import batch_from_counted_sql, counted_columns, counted_copies_sql, serving_view_sql, speed_insert_sql
from lambdalake.names import trino_table
from lambdalake.views import View

LAYERS = ("speed", "batch", "serving")
SQL_DIR = PROJECT_ROOT / "sql"
#: stand-ins for what each batch run fills in
EXAMPLE_BOUNDARY = datetime(2026, 11, 26, 14, 30, tzinfo=timezone.utc)
EXAMPLE_SNAPSHOT = 42
#: the snapshot of the counted copies a run records (lambdalake.batch.count_copies)
EXAMPLE_COUNTED_SNAPSHOT = 43
#: the SQL that judges the copies once for every view of a batch run
COUNTED_FILE = SQL_DIR / "batch" / "counted_copies.sql"


def render(config: Config, view: View, layer: str) -> str:
    """The view's SQL in one layer, with a header saying where it comes from and what stands in."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    catalog = config.iceberg.catalog_name
    batch_table = f"batch.{view.name}__b{EXAMPLE_BOUNDARY:%Y%m%d%H%M}"
    if layer == "speed":
        dialect = "Flink SQL, one branch of the shared speed job (lambdalake.streaming)"
        sql = speed_insert_sql(view, catalog, view.speed_table, config.speed.window_seconds)
    elif layer == "batch":
        dialect = (f"Trino SQL, selected into {batch_table} by each batch_recompute run, from the copies "
                   f"that count, which the run writes once for every view (sql/batch/{COUNTED_FILE.name})")
        sql = batch_from_counted_sql(view, catalog, _counted_table(view.source), EXAMPLE_COUNTED_SNAPSHOT)
    else:
        dialect = "Trino SQL, the view users query, replaced in one statement by each batch run"
        sql = serving_view_sql(view, catalog, f"serving.{view.name}", view.speed_table, batch_table,
                               EXAMPLE_BOUNDARY)
    header = [
        f"-- {view.name} v{view.version} ({view.mode}), {layer} layer: {dialect}.",
        f"-- Made from views/{view.name}.yaml by `lambdalake views render {view.name} --layer {layer}`;"
        " do not edit.",
    ]
    if layer == "speed":
        header.append("-- counted_copies: the copies that count, by the one dedup rule"
                      " (lambdalake.streaming.register_counted_copies).")
    elif layer == "batch":
        header.append(f"-- The counted copies' snapshot {EXAMPLE_COUNTED_SNAPSHOT} stands for what each run fills in. "
                      "A run whose counted copies do not cover the view runs the same aggregate over them as a CTE.")
    elif layer == "serving":
        header.append(f"-- B = {EXAMPLE_BOUNDARY:%Y-%m-%d %H:%M:%S} UTC and its batch table stand for what each run "
                      "fills in.")
    return "\n".join([*header, sql]) + "\n"


def _counted_table(events_table: str) -> str:
    from lambdalake.batch import Layers, counted_table

    return counted_table(Layers(topic="events", events_table=events_table))


def render_counted_copies(config: Config) -> str:
    """The statement each batch run starts with, for the platform's master dataset (a full run)."""
    from lambdalake.views import lambda_views

    columns = sorted(set().union(*(counted_columns(view) for view in lambda_views() if not view.name.startswith("test_"))))
    sql = counted_copies_sql(config.iceberg.catalog_name, "raw.events", EXAMPLE_SNAPSHOT, EXAMPLE_BOUNDARY,
                             config.dedup.horizon_seconds, columns=columns)
    return "\n".join([
        "-- The copies that count, judged once by each batch_recompute run for all its views (its count_copies",
        "-- task, lambdalake.batch.count_copies); each view's batch table is an aggregate of them (sql/batch/<view>.sql).",
        "-- Made by `lambdalake views render --layer batch`; do not edit. An incremental run judges the copies",
        "-- from one horizon before the previous B; a history too large for the batch memory, in event_id slices.",
        "-- It keeps the columns the shipped lambda views read; a run keeps those its own views read.",
        f"-- B = {EXAMPLE_BOUNDARY:%Y-%m-%d %H:%M:%S} UTC and snapshot {EXAMPLE_SNAPSHOT} stand for what each run fills in.",
        f"create or replace table {trino_table(_counted_table('raw.events'), config.iceberg.catalog_name)} as",
        sql,
    ]) + "\n"


def sql_file(view: View, layer: str) -> Path:
    return SQL_DIR / layer / f"{view.name}.sql"
