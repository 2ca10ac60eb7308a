"""Names that reach SQL, Kafka and Flink: one rule each, checked where a name enters the platform,
and the one place a name is quoted into SQL.

A view file, a CLI argument and a DAG param are checked against the same patterns (the DAG forms
use the pattern strings below), before any SQL is written. The rules are ASCII only: Python's
`str.isalnum()` accepts Cyrillic look-alikes, and `$` in a Python regex accepts a trailing
newline, so every check is a full match of an ASCII class.

Names go into SQL quoted by the functions below, per dialect: `trino_ident` and `flink_ident`
for one identifier, `TableName` for a table of the lake catalog. Each checks the name again as
it quotes it, so no quote character can reach the statement. Values go to SQL as bound
parameters; where a statement cannot bind (DDL, a view's text), the literal comes from a typed
value through lambdalake.derive.trino_timestamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def trino_ident(name: str) -> str:
    """One identifier (a catalog, namespace, table or column) quoted for Trino."""
    return '"' + _checked(VIEW_PATTERN, VIEW_RULE, name, "identifier") + '"'


def flink_ident(name: str) -> str:
    """One identifier quoted for Flink SQL."""
    return "`" + _checked(VIEW_PATTERN, VIEW_RULE, name, "identifier") + "`"


#: Iceberg metadata tables Trino reads beside a table (`"t$snapshots"`)
METADATA_TABLES = frozenset({"snapshots", "partitions", "files", "history", "manifests"})


@dataclass(frozen=True)
class TableName:
    """A table (or view) of the lake catalog, `namespace.table`: checked when made, quoted per dialect."""

    namespace: str
    table: str

    def __post_init__(self) -> None:
        _checked(VIEW_PATTERN, VIEW_RULE, self.namespace, "namespace")
        _checked(VIEW_PATTERN, VIEW_RULE, self.table, "table")

    @classmethod
    def parse(cls, text: object, what: str = "table name") -> TableName:
        namespace, table = table_name(text, what).split(".")
        return cls(namespace, table)

    def __str__(self) -> str:
        return f"{self.namespace}.{self.table}"

    def trino(self, catalog: str | None = None) -> str:
        """`"catalog"."namespace"."table"` (without the catalog when None: the session's)."""
        return ".".join(trino_ident(part) for part in [*([catalog] if catalog else []), self.namespace, self.table])

    def flink(self, catalog: str) -> str:
        return ".".join(flink_ident(part) for part in (catalog, self.namespace, self.table))

    def trino_metadata(self, kind: str) -> str:
        """The table's Iceberg metadata table for Trino, e.g. `"raw"."events$snapshots"`."""
        if kind not in METADATA_TABLES:
            raise ConfigError(f"metadata table {kind!r} must be one of {', '.join(sorted(METADATA_TABLES))}")
        return f'{trino_ident(self.namespace)}."{self.table}${kind}"'


def trino_table(text: object, catalog: str | None = None) -> str:
    """A `namespace.table` name, checked and quoted for Trino."""
    return TableName.parse(text).trino(catalog)
