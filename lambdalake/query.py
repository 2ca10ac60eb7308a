"""SQL through Trino, the serving layer, with the Python DB-API client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambdalake.config import Config
from lambdalake.errors import QueryError


def connect(config: Config, schema: str | None = None):  # type: ignore[no-untyped-def]
    import trino

    return trino.dbapi.connect(host=config.host, port=config.trino.port, user="lambdalake",
                               catalog=config.iceberg.catalog_name, schema=schema)


def run_query(config: Config, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Run one statement, with values bound to its `?` placeholders; return its column names and all rows."""
    from trino.exceptions import TrinoQueryError

    with connect(config) as conn:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        except TrinoQueryError as exc:
            raise QueryError(f"Trino: {exc.error_name}: {exc.message}") from exc
        columns = [d[0] for d in cursor.description or []]
    return columns, rows
