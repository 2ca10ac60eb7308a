"""The serving layer: the only code that creates, replaces, locks and drops `serving.<view>`.

A serving view is one Trino view over a speed table and, once a batch run has swapped one in, a
batch table below the boundary B. What each one answers from now, and every step that got it
there, is in the state store (lambdalake.state: `lambdalake_serving`, `lambdalake_serving_steps`),
never read back from table names or view text.

Each step runs the same way, holding the view's lock:
1. finish a step left pending by a crash (`reconcile`);
2. record the new step as pending, with the statement that replaces the view;
3. replace the view with that one statement (readers see the old answer or the new, never a mix);
4. mark the step live, and make it what the view serves, in one transaction.

A crash between 3 and 4 leaves a pending step whose statement may or may not have run. Its batch
table is complete and its B is not behind the live one (every step is taken under the lock, and
the next one reconciles first), so reconciling rolls it forward: it runs the statement again
(the same CREATE OR REPLACE) and marks the step live. Until then the store says what serving
answered before the step, and that the step is pending. `up` reconciles every serving view.

A step whose statement Trino refuses (a table it reads is gone) is marked failed with the error,
at step 3 or when reconciled, and the view serves its live step: a failed step never blocks `up`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from lambdalake import state
from lambdalake.config import Config
from lambdalake.derive import serving_view_sql
from lambdalake.errors import QueryError
from lambdalake.names import trino_table
from lambdalake.query import run_query
from lambdalake.views import View

@contextmanager
def lock(config: Config, serving_view: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock named after a serving view, in the catalog's database.

    Whoever replaces serving.<view> (a batch run's swap, a reprocessing switch) decides what to
    replace it with while holding it, so neither can undo the other.
    """
    with state.connect(config) as connection:
        key = f"lambdalake {serving_view}"
        connection.execute("select pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            connection.execute("select pg_advisory_unlock(hashtext(%s))", (key,))


@dataclass(frozen=True)
class Live:
    """What a serving view answers from now."""

    serving_view: str
    view_name: str
    #: the reprocessed version it reads; None for the view's base
    version: int | None
    speed_table: str
    batch_table: str | None
    boundary: datetime | None
    events_snapshot: int | None
    step_id: int


def live(config: Config, serving_view: str) -> Live | None:
    """What serving_view answers from now; None before it was first created."""
    step = state.live_step(config, serving_view)
    if step is None:
        return None
    return Live(step.serving_view, step.view_name, step.version, step.speed_table, step.batch_table, step.boundary,
                step.events_snapshot, step.id)


def live_version(config: Config, view_name: str) -> int | None:
    """The reprocessed version serving.<view> reads now, else None (its base, or no view yet)."""
    current = live(config, f"serving.{view_name}")
    return None if current is None else current.version


def reconcile(config: Config, serving_view: str) -> list[tuple[int, str | None]]:
    """Roll each step a crash left pending forward; return each one's id with None once it is live,
    or Trino's error when its statement fails now (a table it reads is gone, say).

    A failed step is marked so, and the live step's statement runs again: the view may have been
    replaced before the crash, and the store and Trino then say the same again. The caller holds
    the view's lock.
    """
    outcomes: list[tuple[int, str | None]] = []
    for step in reversed(state.steps(config, serving_view, status="pending")):  # at most one in practice
        try:
            run_query(config, step.sql)
        except QueryError as exc:
            state.step_failed(config, step.id, str(exc))
            current = state.live_step(config, serving_view)
            if current is not None:
                run_query(config, current.sql)
            outcomes.append((step.id, str(exc)))
            continue
        state.step_live(config, step.id)
        outcomes.append((step.id, None))
    return outcomes


def reconcile_all(config: Config) -> list[tuple[str, str | None]]:
    """Reconcile every serving view with a pending step (by `up`); return each one's name with None
    when its step went live, or the error that failed it (it then serves what it served before)."""
    with state.connect(config) as connection:
        names = [v for (v,) in connection.execute(
            "select distinct serving_view from lambdalake_serving_steps where status = 'pending' "
            "order by serving_view")]
    outcomes = []
    for name in names:
        with lock(config, name):
            outcomes += [(name, error) for _, error in reconcile(config, name)]
    return outcomes


def publish(config: Config, view: View, serving_view: str, *, kind: str, speed_table: str, version: int | None = None,
            batch_table: str | None = None, boundary: datetime | None = None, events_snapshot: int | None = None,
            rows_written: int | None = None, airflow_run_id: str | None = None,
            started_at: datetime | None = None, run: state.BatchRun | None = None) -> Live:
    """Replace serving_view: the speed table alone (create, switch) or with a batch table below B
    (batch). The caller holds the view's lock and has checked the step still applies."""
    reconcile(config, serving_view)
    sql = serving_view_sql(view, config.iceberg.catalog_name, serving_view, speed_table, batch_table, boundary)
    step = state.begin_step(config, serving_view, kind, view.name, version, speed_table, batch_table, boundary,
                            events_snapshot, rows_written, airflow_run_id, sql,
                            started_at or datetime.now(timezone.utc), run)
    try:
        run_query(config, sql)
    except QueryError as exc:
        state.step_failed(config, step.id, str(exc))
        raise
    state.step_live(config, step.id)
    return Live(serving_view, view.name, version, speed_table, batch_table, boundary, events_snapshot, step.id)


def batch_steps(config: Config, serving_view: str, speed_table: str | None = None) -> list[state.Step]:
    """The view's live batch steps (newest first), those over speed_table if given."""
    return [s for s in state.steps(config, serving_view, status="live")
            if s.kind == "batch" and (speed_table is None or s.speed_table == speed_table)]


def drop_batch_tables(config: Config, serving_view: str, *, keep: int = 0, speed_table: str | None = None) -> list[str]:
    """Drop the batch tables of the view's batch steps (over speed_table, if given); return them.

    Kept: the newest `keep`, the one serving reads now, and every one serving read within
    `[serving] history_retention` (an answer from then needs it: lambdalake.history).
    """
    current = live(config, serving_view)
    kept = {current.batch_table} if current is not None and current.batch_table else set()
    now = datetime.now(timezone.utc)
    history = state.steps(config, serving_view, status="live")  # newest first, every kind
    for newer, step in zip(history, history[1:]):
        # serving read step's batch table until the newer step went live
        if step.batch_table and newer.live_at and (now - newer.live_at).total_seconds() < config.serving.history_seconds:
            kept.add(step.batch_table)
    newest: list[str] = []  # a re-run with the same B replaces its table: count tables, not steps
    dropped = []
    for step in batch_steps(config, serving_view, speed_table):
        if step.batch_table is None or step.batch_table in newest:
            continue
        if len(newest) < keep:
            newest.append(step.batch_table)
            continue
        if step.dropped_at is None and step.batch_table not in kept:
            run_query(config, f"drop table if exists {trino_table(step.batch_table)}")
            state.batch_table_dropped(config, step.id)
            dropped.append(step.batch_table)
    return dropped


def drop(config: Config, serving_view: str) -> None:
    """Drop the view and its batch tables, and forget them (tests' and benches' own views)."""
    with lock(config, serving_view):
        run_query(config, f"drop view if exists {trino_table(serving_view)}")
        for step in batch_steps(config, serving_view):
            if step.batch_table and step.dropped_at is None:
                run_query(config, f"drop table if exists {trino_table(step.batch_table)}")
        state.forget_serving(config, serving_view)
