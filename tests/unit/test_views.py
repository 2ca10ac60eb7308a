"""View definitions: validation errors that name file and field, and a fourth view (the shipped
views' SQL is checked against sql/ in test_render)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lambdalake.derive import speed_fields, speed_insert_sql
from lambdalake.views import Measure, ViewError, load_view, load_views, parse_view

VALID = {
    "name": "clicks_per_page", "version": 2, "mode": "lambda", "source": "raw.events", "bucket": "5 minutes",
    "where": {"event_type": ["click", "add_to_cart"]}, "dimensions": ["page", "product_id"],
    "measures": [{"name": "clicks", "agg": "count"}, {"name": "smallest", "agg": "min", "column": "amount"}],
}


def test_the_shipped_views_load() -> None:
    assert [v.name for v in load_views()] == ["events_per_type", "page_views_per_page", "purchases_per_product",
                                              "visitors_per_page"]


def test_a_fourth_view_defined_only_here_derives_its_sql_and_table() -> None:
    view = parse_view(VALID, "test")
    assert view.bucket_minutes == 5
    sql = speed_insert_sql(view, "lake", "speed.clicks_per_page", 7)
    assert "insert into `lake`.`speed`.`clicks_per_page`" in sql
    assert "to_timestamp_ltz(event_time_ms - mod(event_time_ms, 300000), 3) as event_time_bucket" in sql
    assert "where `event_type` in ('click', 'add_to_cart')" in sql
    assert "min(`amount`) as `smallest`" in sql and "count(*) as `clicks`" in sql
    assert "interval '7' second" in sql
    assert sql.rstrip().endswith("group by window_start, window_end, ingest_bucket, event_time_bucket, "
                                 "`page`, `product_id`")
    assert [(f["name"], f["type"]) for f in speed_fields(view)] == [
        ("ingest_bucket", "timestamptz"), ("event_time_bucket", "timestamptz"), ("page", "string"),
        ("product_id", "string"), ("clicks", "long"), ("smallest", "decimal(12,2)")]


def test_filter_values_are_escaped_literals() -> None:
    view = parse_view({**VALID, "where": {"page": "/it's"}}, "test")
    assert "`page` in ('/it''s')" in speed_insert_sql(view, "lake", "speed.x", 5)


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"name": "Bad-Name"}, "name", "lowercase"),
    ({"name": "x; drop table y"}, "name", "lowercase"),
    ({"version": 0}, "version", "positive integer"),
    ({"mode": "sigma"}, "mode", "lambda, kappa"),
    ({"source": "raw.other"}, "source", "raw.events"),
    ({"bucket": "90 seconds"}, "bucket", "whole number of minutes"),
    ({"bucket": "7 minutes"}, "bucket", "divide a day evenly"),
    ({"bucket": "0 minutes"}, "bucket", "whole number"),
    ({"dimensions": ["page", "nope"]}, "dimensions[1]", "unknown column 'nope'"),
    ({"dimensions": ["kafka_offset"]}, "dimensions[0]", "unknown column"),
    ({"dimensions": ["page", "page"]}, "dimensions", "twice"),
    ({"where": {"colour": "red"}}, "where.colour", "unknown column"),
    ({"where": {"page": 3}}, "where.page", "string"),
    ({"measures": []}, "measures", "non-empty"),
    ({"measures": [{"name": "u", "agg": "count_distinct", "column": "amount"}]}, "measures[0].column", "string column"),
    ({"measures": [{"name": "u", "agg": "count_distinct"}]}, "measures[0].column", "unknown column None"),
    ({"measures": [{"name": "u", "agg": "count_distinct", "column": "user_id"}, {"name": "u_sketch", "agg": "count"}]},
     "measures[1].name", "new lowercase name"),
    ({"measures": [{"name": "u_ids", "agg": "count"}, {"name": "u", "agg": "count_distinct", "column": "user_id"}]},
     "measures[1].name", "taken"),
    ({"measures": [{"name": "u", "agg": "avg", "column": "amount"}]}, "measures[0].agg", "not mergeable"),
    ({"measures": [{"name": "s", "agg": "sum", "column": "page"}]}, "measures[0].column", "numeric"),
    ({"measures": [{"name": "s", "agg": "sum"}]}, "measures[0].column", "unknown column None"),
    ({"measures": [{"name": "n", "agg": "count", "column": "page"}]}, "measures[0].column", "no column"),
    ({"measures": [{"name": "page", "agg": "count"}]}, "measures[0].name", "new lowercase name"),
    ({"colour": "red"}, "colour", "unknown key"),
    ({"freshness": "soon"}, "freshness", "positive duration"),
    ({"freshness": "0 s"}, "freshness", "positive duration"),
    ({"freshness": "30"}, "freshness", "positive duration"),
])
def test_bad_definitions_name_the_field(change: dict, field: str, message: str) -> None:
    with pytest.raises(ViewError) as error:
        parse_view({**VALID, **change}, "views/x.yaml")
    assert str(error.value).startswith(f"views/x.yaml: {field}: ")
    assert message in str(error.value)


def test_missing_keys_and_file_name_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ViewError, match="views/x.yaml: measures: is required"):
        parse_view({k: v for k, v in VALID.items() if k != "measures"}, "views/x.yaml")
    path = tmp_path / "other_name.yaml"
    path.write_text(yaml.safe_dump(VALID))
    with pytest.raises(ViewError, match=f"{path}: name: 'clicks_per_page' must match the file name"):
        load_view(path)
    path.write_text("name: [unclosed")
    with pytest.raises(ViewError, match="not valid YAML"):
        load_view(path)


@pytest.mark.parametrize(("text", "seconds"), [("30 s", 30), ("5 min", 300), ("1 h", 3600), ("1.5 minutes", 90)])
def test_a_freshness_target_is_a_duration_and_not_part_of_the_logic(text: str, seconds: float) -> None:
    view = parse_view({**VALID, "freshness": text}, "test")
    assert view.freshness_seconds == seconds
    assert view == parse_view(VALID, "test")  # a new target is no new version of the view's logic
    assert parse_view(VALID, "test").freshness_seconds is None


def test_count_distinct_is_where_lambda_earns_its_keep() -> None:
    base = {"name": "v", "version": 1, "mode": "lambda", "source": "raw.events", "bucket": "1 hour",
            "dimensions": ["page"]}
    distinct = parse_view({**base, "measures": [{"name": "visitors", "agg": "count_distinct", "column": "user_id"},
                                                {"name": "views", "agg": "count"}]}, "v.yaml")
    assert distinct.measures[0] == Measure("visitors", "count_distinct", "user_id")
    assert distinct.needs_lambda
    assert not parse_view({**base, "measures": [{"name": "views", "agg": "count"}]}, "v.yaml").needs_lambda
