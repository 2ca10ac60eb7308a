from __future__ import annotations

import pytest

from lambdalake.errors import ConfigError
from lambdalake.events import REASONS
from lambdalake.names import table_name
from lambdalake.tables import declarations, schema_of


def test_raw_events_is_partitioned_by_event_day_and_keeps_the_source_position() -> None:
    schema, spec = schema_of("raw.events")
    names = [f.name for f in schema.fields]
    assert names[-5:] == ["ingest_time", "kafka_partition", "kafka_offset", "import_file", "import_row"]
    # declared after the first tables were made: ensure_table adds them to an existing table
    assert not schema.find_field("import_file").required and not schema.find_field("import_row").required
    assert str(schema.find_field("amount").field_type) == "decimal(12, 2)"
    assert [(f.name, str(f.transform)) for f in spec.fields] == [("event_time_day", "day")]


def test_rejected_table_has_reason_payload_and_position() -> None:
    schema, _ = schema_of("raw.events_rejected")
    assert {"reason_code", "reason", "payload", "payload_bytes", "kafka_partition", "kafka_offset"} <= {
        f.name for f in schema.fields}
    assert "one of lambdalake.events.REASONS" in schema.find_field("reason_code").doc
    assert REASONS


def test_every_declared_table_builds() -> None:
    for name in declarations():
        schema_of(name)


@pytest.mark.parametrize("name", ["raw", "raw.events; drop table x", "Raw.Events", "raw.events.x", "1raw.e"])
def test_unsafe_table_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="namespace.table"):
        table_name(name)
