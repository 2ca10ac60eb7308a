"""One Iceberg catalog for three engines: what one writes, the other two read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.query import run_query

ROWS = [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}, {"id": 3, "name": "gamma"}]


@pytest.fixture
def table_name(config: Config) -> Iterator[str]:
    name = f"meta.catalog_test_{uuid.uuid4().hex[:8]}"
    yield name
    catalog = load_catalog(config)
    if catalog.table_exists(name):
        catalog.purge_table(name)


def test_pyiceberg_writes_trino_and_flink_read(config: Config, table_name: str) -> None:
    data = pa.Table.from_pylist(ROWS, schema=pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())]))
    load_catalog(config).create_table(table_name, schema=data.schema).append(data)

    _, trino_rows = run_query(config, f"select id, name from {table_name} order by id")
    assert trino_rows == [[r["id"], r["name"]] for r in ROWS]

    _, flink_rows = Flink(config).sql(f"SELECT id, name FROM {table_name}")
    assert sorted(flink_rows) == [[r["id"], r["name"]] for r in ROWS]


def test_trino_writes_pyiceberg_reads(config: Config, table_name: str) -> None:
    run_query(config, f"create table {table_name} (id bigint, name varchar)")
    run_query(config, f"insert into {table_name} values (1, 'alpha'), (2, 'beta'), (3, 'gamma')")

    table = load_catalog(config).load_table(table_name)
    assert sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"]) == ROWS


def test_flink_writes_trino_reads(config: Config, table_name: str) -> None:
    run_query(config, f"create table {table_name} (id bigint, name varchar)")
    Flink(config).sql(f"INSERT INTO {table_name} VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')")

    _, rows = run_query(config, f"select id, name from {table_name} order by id")
    assert rows == [[r["id"], r["name"]] for r in ROWS]
