"""`lambdalake demo`: the platform end to end, as far as it goes today.

One table in the shared Iceberg catalog, written by pyiceberg and read back through Trino
and through a PyFlink job on the Flink cluster: proof that the three engines share one catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.query import run_query

DEMO_TABLE = "meta.demo_roundtrip"


def write_demo_rows(config: Config) -> list[dict[str, Any]]:
    """(Re)create the demo table through pyiceberg and append three rows; return them."""
    import pyarrow as pa

    rows = [
        {"engine_id": 1, "engine": "kafka", "layer": "log"},
        {"engine_id": 2, "engine": "flink", "layer": "speed"},
        {"engine_id": 3, "engine": "trino", "layer": "serving"},
    ]
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        pa.field("engine_id", pa.int64(), nullable=False),
        pa.field("engine", pa.string()),
        pa.field("layer", pa.string()),
    ]))
    catalog = load_catalog(config)
    if catalog.table_exists(DEMO_TABLE):
        catalog.drop_table(DEMO_TABLE)
    catalog.create_table(DEMO_TABLE, schema=table.schema).append(table)
    return rows


def run_demo(config: Config, say: Callable[[str], None]) -> None:
    rows = write_demo_rows(config)
    say(f"pyiceberg wrote {len(rows)} rows to {config.iceberg.catalog_name}.{DEMO_TABLE}")

    columns, trino_rows = run_query(config, f"select * from {DEMO_TABLE} order by engine_id")
    say(f"Trino reads {len(trino_rows)} rows:")
    say("  " + " | ".join(columns))
    for row in trino_rows:
        say("  " + " | ".join(str(v) for v in row))

    columns, flink_rows = Flink(config).sql(f"SELECT * FROM {DEMO_TABLE}")
    say(f"Flink SQL (a PyFlink job on the session cluster) reads {len(flink_rows)} rows:")
    say("  " + " | ".join(columns))
    for row in sorted(flink_rows):
        say("  " + " | ".join(str(v) for v in row))
