"""Iceberg maintenance on the real engines: many small files in a partition become one, data unchanged.

(That it is safe while the jobs stream is checked in test_batch, which runs the DAG mid-stream.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.maintenance import files_per_partition, maintain
from lambdalake.query import run_query
from lambdalake.tables import ensure_table


@pytest.fixture
def table(config: Config) -> Iterator[str]:
    name = f"raw.test_maintenance_{uuid.uuid4().hex[:8]}"
    ensure_table(config, "raw.events", name)
    yield name
    load_catalog(config).purge_table(name)


def test_compaction_leaves_one_file_per_partition_and_the_same_rows(config: Config, table: str) -> None:
    for offset in range(12):  # one small file per statement, as the streaming jobs make per checkpoint
        run_query(config, f"insert into {table} (event_id, user_id, session_id, event_type, page, event_time, "
                          "ingest_time, kafka_partition, kafka_offset) values "
                          f"('e{offset}', 'u', 's', 'click', '/', timestamp '2026-11-26 10:{offset:02d}:00 UTC', "
                          f"timestamp '2026-11-26 10:{offset:02d}:01 UTC', 0, {offset})")
    assert files_per_partition(config, table) == [12]
    before = run_query(config, f"select * from {table} order by kafka_offset")[1]

    result = maintain(config, table, say=lambda line: None)

    assert (result.files_before, result.files_after, result.largest_partition_after) == (12, 1, 1)
    assert files_per_partition(config, table) == [1]
    assert run_query(config, f"select * from {table} order by kafka_offset")[1] == before
