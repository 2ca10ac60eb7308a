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
