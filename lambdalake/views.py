"""Views (metrics), each defined once in views/<name>.yaml, validated before any SQL is made.

A definition names its source (`raw.events`), an event-time bucket (a whole number of minutes),
dimensions, measures, an optional equality filter, a mode (`lambda` or `kappa`) and a version.
Every error names the file and the field. From a valid definition, `lambdalake.derive` makes the SQL.

Measures are count, sum, min and max, whose batch and speed parts combine exactly (the two
layers give the same answer: Kappa would do), and count_distinct, which only the batch layer
answers exactly: the speed layer keeps each window's distinct values and serving merges them as
HyperLogLog sketches, within a stated error (`DISTINCT_ERROR`). A view with a count_distinct
measure is where Lambda earns its keep (`View.needs_lambda`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from lambdalake import names
from lambdalake.config import PROJECT_ROOT
from lambdalake.errors import LambdalakeError
from lambdalake.tables import declarations

VIEWS_DIR = PROJECT_ROOT / "views"
SOURCES = ("raw.events",)
#: measures whose batch and speed parts combine exactly
EXACT_AGGREGATES = ("count", "sum", "min", "max")
AGGREGATES = (*EXACT_AGGREGATES, "count_distinct")
#: the standard error of a count_distinct answer that includes speed data: Trino's approx_set
#: default (HyperLogLog with 4,096 buckets), 1.04 / sqrt(4096)
DISTINCT_ERROR = 0.01625
MODES = ("lambda", "kappa")
#: every speed row carries the minute in which its events reached Kafka: the batch boundary
#: moves in whole ingest buckets (DESIGN.md section 5)
INGEST_BUCKET_MINUTES = 1
#: the columns a count_distinct measure adds to its name: the distinct values (speed and batch
#: tables), the HyperLogLog sketch (batch and serving), whether the answer is exact (serving)
DISTINCT_SUFFIXES = ("_ids", "_sketch", "_is_exact")
#: columns a view may not use as a dimension or measure: the platform's own bookkeeping
RESERVED = ("ingest_time", "kafka_partition", "kafka_offset", "properties")
KEYS = {"name", "version", "mode", "source", "bucket", "where", "dimensions", "measures", "freshness"}
#: keys that say how the view is run, not what it computes: not pinned with a version's logic, so
#: changing them takes no new version
OPERATIONAL_KEYS = {"freshness"}


def floor_to_bucket(moment: datetime) -> datetime:
    """The start of the ingest bucket moment falls in (UTC): B and the speed restart's cut-off are one."""
    floored = moment.astimezone(timezone.utc).replace(second=0, microsecond=0)
    return floored - timedelta(minutes=floored.minute % INGEST_BUCKET_MINUTES)


class ViewError(LambdalakeError):
    """A view definition is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Measure:
    name: str
    agg: str
    #: None for count
    column: str | None


@dataclass(frozen=True)
class View:
    name: str
    version: int
    mode: str
    source: str
    bucket_minutes: int
    #: column -> allowed values (rows match when the column is one of them)
    where: tuple[tuple[str, tuple[str, ...]], ...]
    dimensions: tuple[str, ...]
    measures: tuple[Measure, ...]
    #: `freshness`: the seconds an event may take from reaching Kafka to being counted in
    #: serving.<view>; None means `[serving] freshness_target`. Not part of the logic
    freshness_seconds: float | None = field(default=None, compare=False)

    @property
    def speed_table(self) -> str:
        return f"speed.{self.name}"

    @property
    def needs_lambda(self) -> bool:
        """Whether the batch layer answers more accurately than the speed layer (a count_distinct
        measure): then Lambda earns its keep; otherwise both layers agree and Kappa would do."""
        return any(m.agg not in EXACT_AGGREGATES for m in self.measures)

    @property
    def architecture(self) -> str:
        """Which architecture the view's measures call for, and why, in a sentence."""
        approximate = [m.name for m in self.measures if m.agg not in EXACT_AGGREGATES]
        if not approximate:
            verdict = "identical in both layers (count, sum, min and max combine exactly): Kappa would do"
        else:
            verdict = (f"more accurate in batch: {', '.join(approximate)} is exact there and a HyperLogLog "
                       f"estimate ({DISTINCT_ERROR:.2%} standard error) in speed: Lambda earns its keep")
        if self.mode == "kappa" and approximate:
            verdict += "; as a kappa view it is only ever the estimate"
        return verdict


def source_columns(source: str) -> dict[str, str]:
    """Column name -> declared type, for the columns of source a view may use."""
    return {f["name"]: f["type"] for f in declarations()[source]["fields"] if f["name"] not in RESERVED}


def _bucket_minutes(value: Any, fail: Any) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(minute|minutes|hour|hours|day|days)\s*", str(value))
    if not match or int(match[1]) == 0:
        fail("bucket", f"{value!r} is not a whole number of minutes, hours or days (e.g. '5 minutes', '1 hour')")
    unit = {"minute": 1, "hour": 60, "day": 1440}[match[2].rstrip("s")]  # type: ignore[index]
    minutes = int(match[1]) * unit  # type: ignore[index]
    if 1440 % minutes and minutes % 1440:
        fail("bucket", f"{value!r} must divide a day evenly, or be a whole number of days")
    return minutes


def _freshness_seconds(value: Any, fail: Any) -> float | None:
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|min|minutes?|h|hours?)\s*", str(value))
    if not match or float(match[1]) <= 0:
        fail("freshness", f"{value!r} is not a positive duration such as '30 s', '5 min' or '1 h'")
    return float(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2][0]]  # type: ignore[index]


def parse_view(data: Any, where_from: str) -> View:
    """Validate one definition (the parsed YAML) and return it; ViewError names where_from and field."""

    def fail(field: str, message: str) -> None:
        raise ViewError(f"{where_from}: {field}: {message}")

    if not isinstance(data, dict):
        fail("(top level)", "must be a mapping of name, version, mode, source, bucket, dimensions, measures")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        fail(unknown[0], f"unknown key; known keys: {', '.join(sorted(KEYS))}")
    for key in ("name", "version", "mode", "source", "bucket", "measures"):
        if key not in data:
            fail(key, "is required")
    name = data["name"]
    if not names.matches(names.VIEW_PATTERN, name):
        fail("name", f"{name!r} must be {names.VIEW_RULE}")
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        fail("version", f"{version!r} must be a positive integer")
    if data["mode"] not in MODES:
        fail("mode", f"{data['mode']!r} must be one of {', '.join(MODES)}")
    if data["source"] not in SOURCES:
        fail("source", f"{data['source']!r} must be one of {', '.join(SOURCES)}")
    columns = source_columns(data["source"])

    def column(field: str, value: Any) -> str:
        if not isinstance(value, str) or value not in columns:
            fail(field, f"unknown column {value!r}; columns of {data['source']}: {', '.join(columns)}")
        return value

    dimensions = data.get("dimensions") or []
    if not isinstance(dimensions, list):
        fail("dimensions", "must be a list of column names")
    dims = tuple(column(f"dimensions[{i}]", d) for i, d in enumerate(dimensions))
    if len(set(dims)) != len(dims):
        fail("dimensions", "lists a column twice")

    where = data.get("where") or {}
    if not isinstance(where, dict):
        fail("where", "must map column names to a value or a list of values")
    filters = []
    for key, allowed in where.items():
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values or not all(isinstance(v, str) for v in values):
            fail(f"where.{key}", "must be a string or a non-empty list of strings")
        filters.append((column(f"where.{key}", key), tuple(values)))

    measures_data = data["measures"]
    if not isinstance(measures_data, list) or not measures_data:
        fail("measures", "must be a non-empty list")
    measures = []
    taken = set(dims) | {"ingest_bucket", "event_time_bucket"}
    for i, raw in enumerate(measures_data):
        field = f"measures[{i}]"
        if not isinstance(raw, dict) or set(raw) - {"name", "agg", "column"}:
            fail(field, "must be a mapping of name, agg and (except for count) column")
        measure_name = raw.get("name")
        if not names.matches(names.VIEW_PATTERN, measure_name) or measure_name in taken:
            fail(f"{field}.name", f"{measure_name!r} must be a new lowercase name (letters, digits, underscores)")
        if any(measure_name + suffix in taken for suffix in DISTINCT_SUFFIXES):
            fail(f"{field}.name", f"{measure_name!r} is taken by the columns a count_distinct measure adds")
        taken.add(measure_name)
        agg = raw.get("agg")
        if agg not in AGGREGATES:
            fail(f"{field}.agg", f"{agg!r} is not mergeable; use one of {', '.join(AGGREGATES)} "
                                 "(batch and speed parts must combine)")
        if agg == "count":
            if "column" in raw:
                fail(f"{field}.column", "count counts events: it takes no column")
            measures.append(Measure(measure_name, agg, None))
            continue
        source_column = column(f"{field}.column", raw.get("column"))
        if agg == "count_distinct":
            if columns[source_column] != "string":
                fail(f"{field}.column", f"count_distinct counts distinct ids: it needs a string column; "
                                        f"{source_column} is {columns[source_column]}")
            for suffix in DISTINCT_SUFFIXES:
                if measure_name + suffix in taken:
                    fail(f"{field}.name", f"{measure_name!r}: the column {measure_name + suffix!r} it adds is taken")
                taken.add(measure_name + suffix)
        if agg == "sum" and not re.match(r"(int|long|decimal)", columns[source_column]):
            fail(f"{field}.column", f"sum needs a numeric column; {source_column} is {columns[source_column]}")
        measures.append(Measure(measure_name, agg, source_column))

    return View(name=name, version=version, mode=data["mode"], source=data["source"],
                bucket_minutes=_bucket_minutes(data["bucket"], fail), where=tuple(filters), dimensions=dims,
                measures=tuple(measures), freshness_seconds=_freshness_seconds(data.get("freshness"), fail))


def read_definition(path: Path) -> Any:
    """The parsed YAML of one definition file, unvalidated."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ViewError(f"{path}: not valid YAML: {exc}") from exc


def load_view(path: Path) -> View:
    view = parse_view(read_definition(path), str(path))
    if view.name != path.stem:
        raise ViewError(f"{path}: name: {view.name!r} must match the file name {path.stem!r}")
    return view


def find_view(name: str, directory: Path = VIEWS_DIR) -> tuple[View, dict[str, Any]]:
    """The view called name and its definition as written, less its operational keys (what a
    version pins); ViewError for a bad or unknown name."""
    if not names.matches(names.VIEW_PATTERN, name):
        raise ViewError(f"view name {name!r} must be {names.VIEW_RULE}")
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(v.name for v in load_views(directory)) or "none"
        raise ViewError(f"unknown view {name!r}; views in {directory}: {known}")
    logic = {key: value for key, value in read_definition(path).items() if key not in OPERATIONAL_KEYS}
    return load_view(path), logic


def load_views(directory: Path = VIEWS_DIR) -> list[View]:
    """Every view in directory, sorted by name."""
    return [load_view(path) for path in sorted(directory.glob("*.yaml"))]


def lambda_views(directory: Path = VIEWS_DIR) -> list[View]:
    """The views kept by the speed job and batch_recompute (kappa views have jobs of their own)."""
    return [view for view in load_views(directory) if view.mode == "lambda"]
