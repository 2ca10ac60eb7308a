"""Names that reach SQL, Kafka and Flink: one rule each, checked where a name enters the platform.

A view file, a CLI argument and a DAG param are checked against the same patterns (the DAG forms
use the pattern strings below), before any SQL is written. The rules are ASCII only: Python's
`str.isalnum()` accepts Cyrillic look-alikes, and `$` in a Python regex accepts a trailing
newline, so every check is a full match of an ASCII class.
"""

from __future__ import annotations

import re

from lambdalake.errors import ConfigError

#: a view, a measure, a dimension: what Trino and Flink take unquoted and case-folded alike
VIEW_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
#: namespace.table in the lake catalog
TABLE_PATTERN = r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$"
#: a Kafka topic, a consumer group, a Flink job name
TOPIC_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
#: appended to a deployment's table names (tests and benches use their own)
SUFFIX_PATTERN = r"^[a-z0-9_]{0,40}$"

VIEW_RULE = "lowercase letters, digits and underscores, starting with a letter"
TABLE_RULE = "namespace.table, each lowercase letters, digits and underscores, starting with a letter"
TOPIC_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128"
SUFFIX_RULE = "lowercase letters, digits and underscores, at most 40"


def matches(pattern: str, value: object) -> bool:
    """Whether value is a str that fully matches pattern (an anchored pattern above), ASCII only."""
    return isinstance(value, str) and re.fullmatch(pattern[1:-1], value, re.ASCII) is not None


def _checked(pattern: str, rule: str, value: object, what: str) -> str:
    if not matches(pattern, value):
        raise ConfigError(f"{what} {value!r} must be {rule}")
    return value  # type: ignore[return-value]


def view_name(value: object, what: str = "view name") -> str:
    return _checked(VIEW_PATTERN, VIEW_RULE, value, what)


def table_name(value: object, what: str = "table name") -> str:
    return _checked(TABLE_PATTERN, TABLE_RULE, value, what)


def topic_name(value: object, what: str = "topic") -> str:
    return _checked(TOPIC_PATTERN, TOPIC_RULE, value, what)


def suffix(value: object, what: str = "suffix") -> str:
    return _checked(SUFFIX_PATTERN, SUFFIX_RULE, value, what)
