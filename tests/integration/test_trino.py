from __future__ import annotations

import trino

from lambdalake.config import Config


def test_select_through_the_python_dbapi(config: Config) -> None:
    conn = trino.dbapi.connect(host=config.host, port=config.trino.port, user="test")
    cursor = conn.cursor()
    cursor.execute("select 6 * 7")
    assert cursor.fetchall() == [[42]]


def test_lake_catalog_has_every_platform_schema(config: Config) -> None:
    conn = trino.dbapi.connect(host=config.host, port=config.trino.port, user="test")
    cursor = conn.cursor()
    cursor.execute(f"show schemas from {config.iceberg.catalog_name}")
    schemas = {row[0] for row in cursor.fetchall()}
    assert set(config.iceberg.namespaces) <= schemas
