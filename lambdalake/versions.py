"""Versions of a view: the table and job each one has, and the logic each runs (which one serving
reads is in the state store: lambdalake.serving.live_version).

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
