"""The accuracy report: how far the speed layer's answers were from the batch layer's.

Speed rows below the previous B are deleted, so the comparison is made when it still can be: at
each batch swap, for every bucket the speed layer answered between the previous B and the new
one, serving's answer for the copies below the new B as it stood before the swap (previous batch
table plus those speed rows) is set beside the new batch table's answer, per measure, in
`meta.view_accuracy` (lambdalake.derive.accuracy_sql). For distinct counts the difference is the
sketch's error; for every measure it is also the late or duplicate data the speed layer judged
differently. `lambdalake accuracy VIEW` prints its distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lambdalake.config import Config
from lambdalake.derive import accuracy_sql
from lambdalake.names import trino_table
from lambdalake.query import run_delete, run_query
from lambdalake.tables import ensure_table
from lambdalake.views import View

META_TABLE = "meta.view_accuracy"


def record(config: Config, view: View, serving_view: str, speed_table: str, previous_batch: str | None,
           previous_boundary: datetime | None, batch_table: str, boundary: datetime) -> int:
    """Append the comparison for one swap (batch_table made live at B = boundary); return its rows.
    The rows of an earlier attempt for the same batch table are replaced, so it may be rerun."""
    ensure_table(config, META_TABLE)
    meta = trino_table(META_TABLE, config.iceberg.catalog_name)
    run_delete(config, f"delete from {meta} where view = ? and batch_table = ?", [serving_view, batch_table])
    select = accuracy_sql(view, config.iceberg.catalog_name, speed_table, previous_batch, previous_boundary,
                          batch_table, boundary)
    _, rows = run_query(
        config,
        f"insert into {meta} (recorded_at, view, batch_table, boundary_before, boundary, event_time_bucket, "
        "dimensions, measure, speed_answer, batch_answer, abs_error, relative_error)\n"
        "select ?, ?, ?, ?, ?, event_time_bucket, dimensions, measure, speed_answer, batch_answer, "
        "abs(speed_answer - batch_answer), abs(speed_answer - batch_answer) / nullif(batch_answer, 0)\n"
        f"from ({select})",
        [datetime.now(timezone.utc), serving_view, batch_table, previous_boundary, boundary])
    oldest_kept = datetime.now(timezone.utc) - timedelta(seconds=config.serving.seconds("meta_retention"))
    run_delete(config, f"delete from {meta} where recorded_at < ?",
               [oldest_kept.replace(hour=0, minute=0, second=0, microsecond=0)])
    return int(rows[0][0]) if rows else 0


@dataclass(frozen=True)
class Spread:
    """The distribution of one measure's error over the recorded buckets."""

    measure: str
    buckets: int
    #: buckets where speed and batch differed at all
    differing: int
    p50: float | None
    p95: float | None
    max: float | None
    max_abs: float | None


def report(config: Config, serving_view: str, since: datetime | None = None) -> list[Spread]:
    """Per measure of serving_view: its relative error's p50, p95 and max (and the largest
    absolute error) over every bucket recorded since `since` (all kept rows by default)."""
    from lambdalake.catalog import load_catalog

    if not load_catalog(config).table_exists(META_TABLE):
        return []
    _, rows = run_query(
        config,
        "select measure, count(*), count_if(abs_error > 0), approx_percentile(relative_error, 0.5), "
        "approx_percentile(relative_error, 0.95), max(relative_error), max(abs_error) "
        f"from {trino_table(META_TABLE, config.iceberg.catalog_name)} where view = ? and recorded_at >= ? "
        "group by measure order by measure",
        [serving_view, since or datetime(1970, 1, 1, tzinfo=timezone.utc)])
    return [Spread(*row) for row in rows]


def errors_since(config: Config, since: datetime) -> dict[str, dict[str, list[float]]]:
    """serving view -> measure -> the relative errors recorded since `since` (for the dashboard)."""
    from lambdalake.catalog import load_catalog

    if not load_catalog(config).table_exists(META_TABLE):
        return {}
    _, rows = run_query(config, f"select view, measure, relative_error from {trino_table(META_TABLE)} "
                                "where recorded_at >= ? and relative_error is not null", [since])
    found: dict[str, dict[str, list[float]]] = {}
    for view, measure, error in rows:
        found.setdefault(view, {}).setdefault(measure, []).append(error)
    return found
