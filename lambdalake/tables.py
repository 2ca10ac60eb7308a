"""The platform's Iceberg tables, declared in iceberg/tables.yaml and created here through pyiceberg.

Flink and Trino never create these tables: they write and read what this module made, so the
schema and partitioning are defined once.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lambdalake import names
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.errors import ConfigError

if TYPE_CHECKING:
    from pyiceberg.table import Table

TABLES_FILE = PROJECT_ROOT / "iceberg" / "tables.yaml"
#: how every table lambdalake makes is written, by every engine (Flink, Trino and pyiceberg each
#: honour all of these).
#: - The codec is named because pyiceberg, unlike Iceberg's Java catalogs, records none, and
#:   Iceberg's Java writers (the Flink jobs) then write gzip; zstd cut the ingest job's CPU per
#:   event by 12 % (BENCHMARKS.md, issue 17).
#: - Each commit writes a new metadata file, and the Flink jobs commit at every checkpoint (the
#:   heartbeats' table even when no event arrives): without a limit, a table kept one file per
#:   checkpoint until orphan removal deleted them, about 4,300 at 5 s over [maintenance]
#:   orphan_retention's default 6 h. The current one and 20 before it stay (about 100 s at 5 s):
#:   time travel reads snapshots, which snapshot expiry manages, not these files.
WRITE_PROPERTIES = {"write.format.default": "parquet", "write.parquet.compression-codec": "zstd",
                    "write.metadata.delete-after-commit.enabled": "true",
                    "write.metadata.previous-versions-max": "20"}


def heartbeats_table(events_table: str) -> str:
    """Where the ingest job that writes events_table files the heartbeats' positions."""
    return f"{names.table_name(events_table)}_heartbeats"


@cache
def declarations(path: Path = TABLES_FILE) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(path.read_text())


def _iceberg_type(text: str, next_id: Any) -> Any:
    from pyiceberg import types

    simple = {"string": types.StringType(), "int": types.IntegerType(), "long": types.LongType(),
              "timestamptz": types.TimestamptzType(), "boolean": types.BooleanType(),
              "double": types.DoubleType()}
    if text in simple:
        return simple[text]
    if match := re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", text):
        return types.DecimalType(int(match[1]), int(match[2]))
    if text == "list<string>":
        return types.ListType(next_id(), types.StringType(), element_required=False)
    if text == "map<string,string>":
        return types.MapType(next_id(), types.StringType(), next_id(), types.StringType(), value_required=False)
    raise ConfigError(f"{TABLES_FILE}: unsupported type {text!r}")


def schema_of(declared: str) -> tuple[Any, Any]:
    """The pyiceberg Schema and PartitionSpec of one declared table (e.g. 'raw.events')."""
    table = declarations()[declared]
    return build_schema(table["fields"], table.get("partition_by", []))


def build_schema(fields: list[dict[str, Any]], partition_by: list[dict[str, str]]) -> tuple[Any, Any]:
    """Schema and PartitionSpec from fields ({name, type, required?, doc?}) and partition_by ({source, transform})."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform
    from pyiceberg.types import NestedField

    ids = iter(range(1, 10_000))
    columns = []
    for column in fields:
        field_id = next(ids)
        columns.append(NestedField(field_id, column["name"], _iceberg_type(column["type"], lambda: next(ids)),
                                   required=column.get("required", False), doc=column.get("doc")))
    schema = Schema(*columns)
    transforms = {"day": DayTransform(), "hour": HourTransform(), "identity": IdentityTransform()}
    spec = PartitionSpec(*(
        PartitionField(source_id=schema.find_field(p["source"]).field_id, field_id=1000 + i,
                       transform=transforms[p["transform"]], name=f"{p['source']}_{p['transform']}")
        for i, p in enumerate(partition_by)
    ))
    return schema, spec


def ensure_table(config: Config, declared: str, name: str | None = None) -> Table:
    """Create the declared table under `name` (default: its declared name) unless it exists; add
    the declared columns an existing table lacks (a column declared later, optional), and set its
    declared properties."""
    schema, spec = schema_of(declared)
    properties = {k: str(v) for k, v in (declarations()[declared].get("properties") or {}).items()}
    table = create_if_missing(config, name or declared, schema, spec, declarations()[declared]["doc"], properties)
    if {f.name for f in schema.fields} - {f.name for f in table.schema().fields}:
        with table.update_schema() as update:
            update.union_by_name(schema)
        table = table.refresh()
    return table


def conform(rows: Any, table: Table) -> Any:
    """An Arrow table of rows in table's schema, to append with pyiceberg: each optional column the
    rows lack (one declared later, such as raw.events' import_file) is added as nulls."""
    import pyarrow as pa

    schema = table.schema().as_arrow()
    for field in schema:
        if field.name not in rows.column_names:
            rows = rows.append_column(field.name, pa.nulls(len(rows), field.type))
    return rows.select(schema.names).cast(schema)


def create_if_missing(config: Config, name: str, schema: Any, spec: Any, doc: str,
                      properties: dict[str, str] | None = None) -> Table:
    """Create the table unless it exists; either way, set WRITE_PROPERTIES and properties on it (a
    table made by an earlier version gets what was declared since)."""
    from lambdalake.catalog import load_catalog

    wanted = {**WRITE_PROPERTIES, **(properties or {})}
    table = load_catalog(config).create_table_if_not_exists(
        names.table_name(name), schema=schema, partition_spec=spec,
        properties={"comment": " ".join(doc.split()), **wanted})
    if any(table.properties.get(k) != v for k, v in wanted.items()):
        with table.transaction() as transaction:
            transaction.set_properties(wanted)
        table = table.refresh()
    return table
