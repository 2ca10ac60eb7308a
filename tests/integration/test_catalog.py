"""One Iceberg catalog for three engines: what one writes, the other two read."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.query import run_query
from lambdalake.tables import WRITE_PROPERTIES, ensure_table, schema_of

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


def parquet_codecs(table: Any) -> set[str]:
    """The compression of every column chunk of every data file of the table, from the files' footers."""
    codecs = set()
    for task in table.scan().plan_files():
        footer = pq.ParquetFile(io.BytesIO(table.io.new_input(task.file.file_path).open().read())).metadata
        codecs |= {footer.row_group(g).column(c).compression
                   for g in range(footer.num_row_groups) for c in range(footer.num_columns)}
    return codecs


def test_flink_writes_zstd_even_into_a_table_made_before_lambdalake_named_the_codec(
        config: Config, table_name: str) -> None:
    # made as lambdalake made its tables before: pyiceberg records no codec, and Iceberg's Java
    # writers (the Flink jobs) then fall back to gzip
    schema, spec = schema_of("raw.events_heartbeats")
    load_catalog(config).create_table(table_name, schema=schema, partition_spec=spec,
                                      properties={"write.format.default": "parquet"})
    table = ensure_table(config, "raw.events_heartbeats", table_name)
    assert {k: table.properties.get(k) for k in WRITE_PROPERTIES} == WRITE_PROPERTIES

    Flink(config).sql(f"INSERT INTO {table_name} VALUES (TO_TIMESTAMP_LTZ(0, 3), 0, CAST(7 AS BIGINT))")
    table = load_catalog(config).load_table(table_name)
    assert table.scan().to_arrow().column("kafka_offset").to_pylist() == [7]
    assert parquet_codecs(table) == {"ZSTD"}


def test_every_writer_deletes_the_metadata_files_past_the_newest_kept(config: Config, table_name: str) -> None:
    """pyiceberg, Trino and Flink each delete the metadata file that falls off the table's metadata
    log when they commit, so a table keeps the current file and `previous-versions-max` before it."""
    kept = int(WRITE_PROPERTIES["write.metadata.previous-versions-max"])
    table = ensure_table(config, "raw.events_heartbeats", table_name)
    seen = [table.metadata_location]  # every metadata file the table had, oldest first
    schema = table.schema().as_arrow()
    for offset in range(kept + 2):
        table.append(pa.Table.from_pylist([{"ingest_time": datetime(2026, 1, 1, tzinfo=timezone.utc),
                                            "kafka_partition": 0, "kafka_offset": offset}], schema=schema))
        seen.append(table.metadata_location)

    def assert_kept(writer: str) -> None:
        latest = load_catalog(config).load_table(table_name).metadata_location
        if latest != seen[-1]:
            seen.append(latest)
        left = [location for location in seen[:-kept - 1] if table.io.new_input(location).exists()]
        assert not left, f"after {writer}'s commit, {len(left)} files past the newest {kept + 1} remain: {left[:3]}"
        assert all(table.io.new_input(location).exists() for location in seen[-kept - 1:]), writer

    assert_kept("pyiceberg")
    run_query(config, f"insert into {table_name} values (timestamp '2026-01-01 00:00:00 UTC', 0, {kept + 2})")
    assert_kept("Trino")
    Flink(config).sql(f"INSERT INTO {table_name} VALUES (TO_TIMESTAMP_LTZ(0, 3), 0, CAST({kept + 3} AS BIGINT))")
    assert_kept("Flink")
    assert len(seen) == kept + 5  # made, kept + 2 appends, one insert each from Trino and Flink
