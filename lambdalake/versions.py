"""Versions of a view: the table and job each one has, and the logic each runs (which one serving
reads is in the state store: lambdalake.serving.live_version).

A view's first deployment is its *base*: for a lambda view, `speed.<view>`, written by the shared
speed job. Reprocessing (lambdalake.kappa) replays the log into version N of the view:
`speed.<view>__v<N>`, written by a job of its own, `lambdalake-kappa-<view>-v<N>`. The state store
(lambdalake.state, `lambdalake_speed_tables`) records every such table with the definition it
was made for, so a version always runs, and is recomputed with, its own logic, whatever
views/<view>.yaml says by then; which versions exist is read there, never from table names.
"""

from __future__ import annotations

from typing import Any

from lambdalake import state
from lambdalake.config import Config
from lambdalake.derive import speed_fields, speed_partition_by
from lambdalake.names import trino_table
from lambdalake.query import run_query
from lambdalake.tables import build_schema, create_if_missing
from lambdalake.views import View, parse_view


def version_table(view_name: str, number: int) -> str:
    return f"speed.{view_name}__v{number}"


def version_job(view_name: str, number: int) -> str:
    return f"lambdalake-kappa-{view_name}-v{number}"


def base_table(view_name: str, suffix: str = "") -> str:
    """The speed table the shared speed job writes for a lambda view."""
    return f"speed.{view_name}{suffix}"


def make_speed_table(config: Config, table: str, view: View, version: int | None, definition: dict[str, Any],
                     doc: str) -> state.SpeedTable:
    """Create the view's speed table if missing and record it with the definition it is made for;
    return the record (an existing table keeps the definition it was made for)."""
    schema, spec = build_schema(speed_fields(view), speed_partition_by())
    made = create_if_missing(config, table, schema, spec, doc)
    return state.pin_speed_table(config, table, str(made.metadata.table_uuid), view.name, version, definition)


def table_versions(config: Config, view_name: str) -> list[int]:
    """The reprocessed versions of the view that have a table, oldest first."""
    return [t.version for t in state.version_tables(config, view_name) if t.version is not None]


def pinned_definition(config: Config, table: str) -> dict[str, Any] | None:
    """The definition the speed table was made for (also once dropped); None when it is not recorded."""
    recorded = state.speed_table(config, table, dropped=True)
    return None if recorded is None else recorded.definition


def pinned_view(config: Config, table: str) -> View | None:
    definition = pinned_definition(config, table)
    return None if definition is None else parse_view(definition, table)


def drop_speed_table(config: Config, table: str) -> None:
    """Drop the speed table and record it dropped."""
    run_query(config, f"drop table if exists {trino_table(table)}")
    state.speed_table_dropped(config, table)


def forget(config: Config, view_name: str) -> None:
    """Drop every speed table recorded for the view and forget them (a test's or a bench's view)."""
    for table in state.version_tables(config, view_name):
        run_query(config, f"drop table if exists {trino_table(table.table_name)}")
    if state.speed_table(config, base_table(view_name)) is not None:
        run_query(config, f"drop table if exists {trino_table(base_table(view_name))}")
    state.forget_speed_tables(config, view_name)
