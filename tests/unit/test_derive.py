"""The SQL derived from a view reads as a CTE chain: each bucket expression is written once, in the
`bucketed` step, and the final aggregate groups by named columns."""

from __future__ import annotations

from datetime import datetime, timezone

from lambdalake.derive import (accuracy_sql, batch_select_sql, incremental_merge_sql, merge_slices_sql,
                               serving_select_sql, speed_fields, speed_insert_sql)
from lambdalake.views import parse_view

#: B and the start of an incremental run, as a batch run passes them
B = datetime(2026, 11, 26, 14, 30, tzinfo=timezone.utc)
SINCE = datetime(2026, 11, 26, 13, 30, tzinfo=timezone.utc)

VIEW = parse_view({
    "name": "clicks_per_page", "version": 2, "mode": "lambda", "source": "raw.events", "bucket": "5 minutes",
    "where": {"event_type": ["click", "add_to_cart"]}, "dimensions": ["page", "product_id"],
    "measures": [{"name": "clicks", "agg": "count"}, {"name": "smallest", "agg": "min", "column": "amount"}],
}, "test")


def test_the_speed_sql_names_each_bucket_once_and_windows_the_bucketed_copies() -> None:
    sql = speed_insert_sql(VIEW, "lake", "speed.clicks_per_page", 7, source="new_copies")
    ingest_bucket = "to_timestamp_ltz(ingest_ms - mod(ingest_ms, 60000), 3) as ingest_bucket"
    event_bucket = "to_timestamp_ltz(event_time_ms - mod(event_time_ms, 300000), 3) as event_time_bucket"
    assert sql.count("to_timestamp_ltz(") == 2 and ingest_bucket in sql and event_bucket in sql
    assert sql.startswith("insert into `lake`.`speed`.`clicks_per_page`\nwith bucketed as (\n    select *,")
    # `select *` keeps ingest_time, the time attribute the window needs
    assert "    from new_copies\n)" in sql
    assert "from table(tumble(table bucketed, descriptor(ingest_time), interval '7' second))" in sql
    assert "where `event_type` in ('click', 'add_to_cart')" in sql
    assert "min(`amount`) as `smallest`" in sql and "count(*) as `clicks`" in sql
    assert sql.endswith("group by window_start, window_end, ingest_bucket, event_time_bucket, `page`, `product_id`")


def test_filter_values_are_escaped_literals_in_both_layers() -> None:
    view = parse_view({"name": "x", "version": 1, "mode": "lambda", "source": "raw.events", "bucket": "1 minute",
                       "where": {"page": "/it's"}, "dimensions": ["page"],
                       "measures": [{"name": "n", "agg": "count"}]}, "test")
    assert "where `page` in ('/it''s')" in speed_insert_sql(view, "lake", "speed.x", 5)
    assert "where \"page\" in ('/it''s')" in batch_select_sql(view, "lake", "raw.events", 1, B, 90)


def test_the_batch_sql_names_the_event_time_bucket_once_and_groups_by_names() -> None:
    sql = batch_select_sql(VIEW, "lake", "raw.events", 1, B, 90, (0, 2),
                           since=SINCE)
    bucket = ("cast(from_unixtime(floor(to_unixtime(event_time) / 300) * 300, 'UTC') as timestamp(6) with time zone)"
              " as event_time_bucket")
    assert sql.count("from_unixtime(") == 1
    assert f"bucketed as (\n    select *, {bucket}\n    from counted_copies\n)" in sql
    # the chain: the copies that count (import, dedup), bucket, then the final aggregate over named columns
    steps = ["with counted_copies as (", "    with events as (", "    copies as (", "bucketed as (", "from bucketed"]
    assert [sql.index(step) for step in steps] == sorted(sql.index(step) for step in steps)
    assert sql.endswith("group by event_time_bucket, \"page\", \"product_id\"") and "group by 1" not in sql


DISTINCT = parse_view({
    "name": "visitors", "version": 1, "mode": "lambda", "source": "raw.events", "bucket": "1 hour",
    "dimensions": ["page"], "measures": [{"name": "users", "agg": "count_distinct", "column": "user_id"},
                                         {"name": "views", "agg": "count"}],
}, "test")


def test_a_distinct_count_keeps_sets_in_speed_and_batch_and_merges_sketches_in_serving() -> None:
    assert [(f["name"], f["type"]) for f in speed_fields(DISTINCT)][-2:] == [("users_ids", "list<string>"),
                                                                            ("views", "long")]
    speed = speed_insert_sql(DISTINCT, "lake", "speed.visitors", 1)
    assert "array_agg(distinct `user_id` ignore nulls) as `users_ids`" in speed
    batch = batch_select_sql(DISTINCT, "lake", "raw.events", 1, B, 3600)
    assert 'count(distinct "user_id") as "users"' in batch and 'approx_set("user_id")' in batch
    # slices and incremental runs unite the distinct values: adding counts would count a user twice
    for merged in (merge_slices_sql(DISTINCT, "lake", "batch.s"),
                   incremental_merge_sql(DISTINCT, "lake", "batch.p", "batch.d")):
        assert 'cardinality(array_distinct(flatten(array_agg("users_ids")))) as "users"' in merged
        assert 'sum("users")' not in merged and 'sum("views") as "views"' in merged
    served = serving_select_sql(DISTINCT, "lake", "speed.visitors", "batch.visitors__b1", B)
    assert 'if(bool_and("users" is not null), sum("users"), ' in served
    assert 'bool_and("users" is not null) as "users_is_exact"' in served
    assert 'cast(null as bigint) as "users"' in served and 'unnest("users_ids")' in served
    # before the first batch run, speed alone: every bucket approximate
    assert "bool_and" in serving_select_sql(DISTINCT, "lake", "speed.visitors", None, None)


def test_the_accuracy_report_compares_what_serving_answered_below_the_new_b_with_the_new_batch() -> None:
    sql = accuracy_sql(DISTINCT, "lake", "speed.visitors", "batch.visitors__b0", SINCE, "batch.visitors__b1", B)
    interval = ("ingest_bucket >= timestamp '2026-11-26 13:30:00 UTC' "
                "and ingest_bucket < timestamp '2026-11-26 14:30:00 UTC'")
    assert sql.count(interval) == 2  # the speed part of the answer before, and the buckets it touched
    assert '"lake"."batch"."visitors__b0"' in sql and '"lake"."batch"."visitors__b1" b on' in sql
    assert "array['users', 'views']" in sql
    first = accuracy_sql(DISTINCT, "lake", "speed.visitors", None, None, "batch.visitors__b1", B)
    assert "ingest_bucket >=" not in first and "batch.visitors__b0" not in first
