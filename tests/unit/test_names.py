"""One rule per kind of name, ASCII only and matched whole, shared by the CLI, views and DAG forms."""

from __future__ import annotations

import re

import pytest

from lambdalake import names
from lambdalake.errors import ConfigError

HOSTILE = [
    "x'; drop table raw.events --",  # a quote and a semicolon
    "events;",
    "raw.events.x",  # a dot in the wrong place
    ".events",
    "evеnts",  # a Cyrillic 'е': isalnum() accepts it
    "events\n",  # a Python `$` accepts a trailing newline
    "Events",
    "",
    "x" * 200,
    None,
    42,
]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_names_are_refused_with_the_rule(value: object) -> None:
    for check, rule in [(names.view_name, names.VIEW_RULE), (names.table_name, names.TABLE_RULE)]:
        with pytest.raises(ConfigError, match=re.escape(rule)):
            check(value)
    if value not in ("raw.events.x", "Events"):  # good topic names
        with pytest.raises(ConfigError, match=re.escape(names.TOPIC_RULE)):
            names.topic_name(value)


def test_good_names_pass_unchanged() -> None:
    assert names.view_name("page_views_per_page") == "page_views_per_page"
    assert names.table_name("raw.events_rejected") == "raw.events_rejected"
    assert names.topic_name("test-restart-1a2b.v2_x") == "test-restart-1a2b.v2_x"
    assert names.suffix("") == "" and names.suffix("__t1a2b") == "__t1a2b"
    with pytest.raises(ConfigError, match="suffix"):
        names.suffix("__T")


@pytest.mark.parametrize("pattern", [names.VIEW_PATTERN, names.TABLE_PATTERN, names.TOPIC_PATTERN,
                                     names.SUFFIX_PATTERN])
def test_the_patterns_are_anchored_for_the_dag_forms(pattern: str) -> None:
    # Airflow's forms check them as JSON Schema (ECMA-262) patterns, which match anywhere unless anchored
    assert pattern.startswith("^") and pattern.endswith("$")


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_no_hostile_name_is_quoted_into_sql_in_either_dialect(value: object) -> None:
    for quote in (names.trino_ident, names.flink_ident, names.trino_table, names.TableName.parse):
        with pytest.raises(ConfigError):
            quote(value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        names.TableName("raw", value)  # type: ignore[arg-type]


def test_a_table_name_is_quoted_per_dialect() -> None:
    table = names.TableName.parse("speed.events_per_type__v2")
    assert str(table) == "speed.events_per_type__v2"
    assert table.trino("lake") == '"lake"."speed"."events_per_type__v2"'
    assert table.trino() == '"speed"."events_per_type__v2"'
    assert table.flink("lake") == "`lake`.`speed`.`events_per_type__v2`"
    assert table.trino_metadata("snapshots") == '"speed"."events_per_type__v2$snapshots"'
    with pytest.raises(ConfigError, match="metadata table"):
        table.trino_metadata("snapshots\"; drop")


def test_an_instant_is_written_in_utc_and_a_naive_one_is_refused() -> None:
    from datetime import datetime, timedelta, timezone

    from lambdalake.derive import trino_timestamp

    paris = timezone(timedelta(hours=1))
    assert trino_timestamp(datetime(2026, 11, 26, 15, 30, tzinfo=paris)) == "timestamp '2026-11-26 14:30:00 UTC'"
    assert trino_timestamp(datetime(2026, 11, 26, 14, 30, 0, 5, tzinfo=timezone.utc)) == \
        "timestamp '2026-11-26 14:30:00.000005 UTC'"
    with pytest.raises(ValueError, match="no time zone"):
        trino_timestamp(datetime(2026, 11, 26, 14, 30))
