"""What the serving layer answered at a past instant: time travel over `serving.*`.

A serving view answers from one step at a time (lambdalake.serving). The step live at an
instant T is the last one marked live at or before T in the state store. It names the speed
table, the batch table and B. Its answer at T is the same SQL as the view's, with every table
read `FOR TIMESTAMP AS OF T`: the speed table as its checkpoints had committed it by T, and the
batch table as the swap left it. A table with no snapshot yet at T was empty then.

Every cleanup keeps what this needs for `[serving] history_retention`: Iceberg snapshots
(lambdalake.maintenance), batch tables (lambdalake.serving.drop_batch_tables) and retired
versions (lambdalake.kappa.drop_retired).

The store marks a step live just after Trino replaced the view, so for the milliseconds between
the two an answer at T is computed from the step before.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlglot
from sqlglot import exp

from lambdalake import names, state
from lambdalake.config import Config
from lambdalake.derive import serving_select_sql
from lambdalake.errors import LambdalakeError
from lambdalake.query import run_query
from lambdalake.versions import pinned_view
from lambdalake.views import View, find_view



class HistoryError(LambdalakeError):
    """An answer that the platform cannot give for that instant."""


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant ('2026-11-27 12:00:00', '…T12:00:00+01:00'); UTC when it names no zone."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HistoryError(f"--as-of {text!r} is not an ISO-8601 instant; write e.g. '2026-11-27 12:00:00' "
                           "(UTC) or '2026-11-27T13:00:00+01:00'") from None
    return instant.replace(tzinfo=timezone.utc) if instant.tzinfo is None else instant.astimezone(timezone.utc)


def check_within_retention(config: Config, instant: datetime, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    oldest = now - timedelta(seconds=config.serving.history_seconds)
    if instant < oldest:
        raise HistoryError(f"{instant.isoformat()} is older than [serving] history_retention "
                           f"({config.serving.history_retention}): the oldest answer kept is at {oldest.isoformat()}. "
                           "Raise history_retention to keep more (answers before the change are gone)")
    if instant > now:
        raise HistoryError(f"{instant.isoformat()} is in the future (now is {now.isoformat()})")


def _definition(config: Config, step: state.Step) -> View:
    """The view's logic at that step: the definition pinned in its speed table, else the shipped one."""
    return pinned_view(config, step.speed_table) or find_view(step.view_name)[0]


def _had_snapshot(config: Config, table: str, instant: datetime) -> bool:
    from lambdalake.catalog import load_catalog

    if not load_catalog(config).table_exists(table):
        raise HistoryError(f"{table}, which serving read at {instant.isoformat()}, has been dropped: answers that "
                           f"need it are gone (history_retention is {config.serving.history_retention})")
    snapshots = names.TableName.parse(table).trino_metadata("snapshots")
    _, [[count]] = run_query(config, f"select count(*) from {snapshots} where committed_at <= ?", [instant])
    return bool(count)


def as_of_sql(config: Config, serving_view: str, instant: datetime) -> str:
    """Trino SQL giving exactly what serving_view answered at the instant (a SELECT, no view)."""
    names.table_name(serving_view, "serving view")
    check_within_retention(config, instant)
    step = state.step_live_at(config, serving_view, instant)
    if step is None:
        raise HistoryError(f"{serving_view} did not exist at {instant.isoformat()}: "
                           f"see `lambdalake serving history {serving_view.split('.', 1)[1]}`")
    tables = [t for t in (step.speed_table, step.batch_table) if t is not None]
    empty = frozenset(t for t in tables if not _had_snapshot(config, t, instant))
    return serving_select_sql(_definition(config, step), config.iceberg.catalog_name, step.speed_table,
                              step.batch_table, step.boundary, instant, empty)


def rewrite(config: Config, sql: str, instant: datetime) -> str:
    """The query with every `serving.<view>` it reads replaced by what that view answered at the instant."""
    try:
        tree = sqlglot.parse_one(sql, read="trino")
    except sqlglot.errors.ParseError as error:
        raise HistoryError(f"cannot read the query to travel it in time: {error}") from None
    catalog = config.iceberg.catalog_name
    found = []
    for table in list(tree.find_all(exp.Table)):
        if table.db != "serving" or table.catalog not in ("", catalog):
            continue
        serving_view = f"serving.{table.name}"
        found.append(serving_view)
        subquery = sqlglot.parse_one(as_of_sql(config, serving_view, instant), read="trino").subquery(
            table.alias_or_name)
        table.replace(subquery)
    if not found:
        raise HistoryError("the query reads no serving.<view>: --as-of answers as serving did; "
                           "read other tables with FOR TIMESTAMP AS OF yourself")
    return tree.sql(dialect="trino", pretty=True)
