"""Versions of a view: the table and job each one has, which one serving reads, the logic each runs.

A view's first deployment is its *base*: for a lambda view, `speed.<view>`, written by the shared
speed job. Reprocessing (lambdalake.kappa) replays the log into version N of the view:
`speed.<view>__v<N>`, written by a job of its own, `lambdalake-kappa-<view>-v<N>`. Every speed
table keeps in its properties the definition it was started from, so a version always runs,
and is recomputed with, its own logic, whatever views/<view>.yaml says by then.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lambdalake.config import Config
from lambdalake.query import run_query
from lambdalake.views import View, parse_view

#: the view definition (JSON) a speed table's rows are computed with
DEFINITION_PROPERTY = "lambdalake.view-definition"
#: when a version stopped being served; its table is dropped a grace period later
RETIRED_PROPERTY = "lambdalake.retired-at"


def version_table(view_name: str, number: int) -> str:
    return f"speed.{view_name}__v{number}"


def version_job(view_name: str, number: int) -> str:
    return f"lambdalake-kappa-{view_name}-v{number}"


def base_table(view_name: str, suffix: str = "") -> str:
    """The speed table the shared speed job writes for a lambda view."""
    return f"speed.{view_name}{suffix}"


def table_versions(config: Config, view_name: str) -> list[int]:
    """The reprocessed versions of the view that have a table, oldest first."""
    _, rows = run_query(config, "show tables from speed")
    pattern = re.compile(rf"{re.escape(view_name)}__v(\d+)")
    return sorted(int(m[1]) for (name,) in rows if (m := pattern.fullmatch(name)))


def live_version(config: Config, view_name: str) -> int | None:
    """The reprocessed version serving.<view> reads now (from the view's own SQL), else None."""
    _, rows = run_query(config, "select view_definition from information_schema.views "
                                "where table_schema = 'serving' and table_name = ?", [view_name])
    if not rows:
        return None
    # the table as serving_view_sql quotes it, or as a hand-written view may name it
    match = re.search(rf'"?speed"?\."?{re.escape(view_name)}__v(\d+)\b', rows[0][0], re.IGNORECASE)
    return int(match[1]) if match else None


def pinned_definition(config: Config, table: str) -> dict[str, Any] | None:
    """The definition stored in the table's properties; None when the table or the property is missing."""
    from lambdalake.catalog import load_catalog

    catalog = load_catalog(config)
    if not catalog.table_exists(table):
        return None
    text = catalog.load_table(table).properties.get(DEFINITION_PROPERTY)
    return None if text is None else json.loads(text)


def pinned_view(config: Config, table: str) -> View | None:
    definition = pinned_definition(config, table)
    return None if definition is None else parse_view(definition, table)
