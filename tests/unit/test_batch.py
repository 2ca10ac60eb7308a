"""The boundary and the batch/serving SQL, without engines."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from lambdalake.batch import DEDUP_BYTES_PER_ROW, Layers, Served, complete_until, layers_from, slice_count
from lambdalake.config import Config
from lambdalake.derive import batch_select_sql, incremental_merge_sql, serving_view_sql
from lambdalake.errors import ConfigError
from lambdalake.views import floor_to_bucket, load_views

#: B and the start of an incremental run, as a batch run passes them
B = datetime(2026, 11, 26, 14, 30, tzinfo=timezone.utc)
SINCE = datetime(2026, 11, 26, 13, 30, tzinfo=timezone.utc)

NOW = datetime(2026, 11, 26, 14, 37, 42, tzinfo=timezone.utc)


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, 26, 14, minute, second, tzinfo=timezone.utc)


def test_empty_master_dataset_with_an_empty_log_is_complete_until_now() -> None:
    assert complete_until({}, {0: 0, 1: 0}, NOW) == at(37)


def test_records_in_kafka_but_none_ingested_means_nothing_is_complete() -> None:
    assert complete_until({}, {0: 10, 1: 0}, NOW) is None


def test_no_partitions_known_means_nothing_is_complete() -> None:
    assert complete_until({}, {}, NOW) is None


def test_fully_ingested_partitions_count_as_complete_until_now() -> None:
    ingested = {0: (99, at(20)), 1: (49, at(30))}
    assert complete_until(ingested, {0: 100, 1: 50}, NOW) == at(37)


def test_a_lagging_partition_holds_the_boundary_back_to_its_newest_ingest_minute() -> None:
    ingested = {0: (99, at(20)), 1: (40, at(31, 59))}
    assert complete_until(ingested, {0: 100, 1: 50}, NOW) == at(31)


def test_late_data_does_not_move_the_boundary() -> None:
    # the boundary is about ingest time; how old the events' own times are does not matter
    ingested = {0: (10, at(33, 5))}
    assert complete_until(ingested, {0: 20}, NOW) == at(33)


def test_floor_to_bucket() -> None:
    assert floor_to_bucket(at(5, 59)) == at(5)


def test_a_copy_is_judged_against_the_copy_just_before_it_in_log_order_within_the_horizon() -> None:
    batch = batch_select_sql(load_views()[0], "lake", "raw.events", 1, B, 90)
    assert "lag(ingest_time) over (partition by event_id order by ingest_time, kafka_partition, kafka_offset)" in batch
    assert "previous_copy_time < ingest_time - interval '90' second" in batch
    # every earlier copy of a copy before B is before B: the boundary filter may come first
    assert batch.index("where ingest_time < timestamp '2026-11-26 14:30:00 UTC'") < batch.index("lag(")


def test_a_slice_holds_every_copy_of_its_events_and_is_chosen_before_the_dedup() -> None:
    batch = batch_select_sql(load_views()[0], "lake", "raw.events", 1, B, 90, (2, 5))
    assert "xxhash64(to_utf8(event_id))" in batch and "% 5 = 2" in batch
    assert batch.index("% 5 = 2") < batch.index("lag(")
    assert "xxhash64" not in batch_select_sql(load_views()[0], "lake", "raw.events", 1, B, 90)


def test_an_incremental_run_counts_copies_from_since_judged_by_one_horizon_before_it() -> None:
    batch = batch_select_sql(load_views()[0], "lake", "raw.events", 1, B, 90,
                             since=SINCE)
    # read from one horizon before `since`: the copies that judge the first counted ones
    assert "and ingest_time >= timestamp '2026-11-26 13:30:00 UTC' - interval '90' second" in batch
    assert batch.index("- interval '90' second") < batch.index("lag(")
    # counted: only from `since` on, and only by the rule (its or is bracketed)
    counted = batch[batch.index("counted_copies as ("):]
    assert ("where (previous_copy_time is null or previous_copy_time < ingest_time - interval '90' second)\n"
            "      and ingest_time >= timestamp '2026-11-26 13:30:00 UTC'") in counted


def test_an_incremental_merge_carries_untouched_buckets_over_and_re_adds_the_touched_ones() -> None:
    view = next(v for v in load_views() if v.name == "purchases_per_product")
    merge = incremental_merge_sql(view, "lake", "batch.old", "batch.delta")
    touched = '(select distinct event_time_bucket from "lake"."batch"."delta")'
    assert f"where event_time_bucket not in {touched}" in merge
    assert f'from "lake"."batch"."old" where event_time_bucket in {touched}' in merge
    assert 'sum("purchases") as "purchases", sum("revenue") as "revenue", max("largest_purchase")' in merge


def test_the_full_recompute_period_is_a_duration() -> None:
    assert Config().batch.full_recompute_seconds == 86400
    with pytest.raises(ConfigError, match="batch.full_recompute_every"):
        _ = dataclasses.replace(Config().batch, full_recompute_every="daily").full_recompute_seconds


def test_the_history_is_sliced_so_each_slice_fits_the_batch_memory() -> None:
    config = Config()
    config = dataclasses.replace(config, batch=dataclasses.replace(config.batch, query_max_memory="1000MB"))
    fits = 1000 * 2**20 // DEDUP_BYTES_PER_ROW
    assert slice_count(config, 0) == 1 and slice_count(config, fits) == 1
    assert slice_count(config, fits + 1) == 2 and slice_count(config, 10 * fits) == 10


def test_serving_without_a_batch_run_is_the_speed_layer_alone() -> None:
    view = load_views()[0]
    sql = serving_view_sql(view, "lake", "serving.x", "speed.x", None, None)
    assert "batch" not in sql and "ingest_bucket >=" not in sql and '"lake"."speed"."x"' in sql


def test_layer_names_and_params_are_validated() -> None:
    view = load_views()[0]
    layers = Layers(topic="events", suffix="__t1")
    assert layers.speed(view) == f"speed.{view.name}__t1"
    assert Served(view, f"{view.name}__v2").batch_table(at(30)) == f"batch.{view.name}__v2__b202611261430"
    assert layers.serving(view) == f"serving.{view.name}__t1"
    with pytest.raises(ConfigError):
        layers_from(Config(), {"events_table": "raw.events; drop"})


def test_a_stale_write_that_ends_before_its_kill_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdalake import batch
    from lambdalake.errors import QueryError

    killed: list[str] = []

    def run_query(config: Config, sql: str, params: object = None) -> tuple[list[str], list[list[str]]]:
        if "system.runtime.queries" in sql:
            return ["query_id", "query"], [["q_1", "insert into \"lake\".\"batch\".\"t__b1\" select 1"],
                                           ["q_2", "insert into \"lake\".\"batch\".\"t__b1\" select 2"]]
        killed.append(sql)
        if "q_1" in sql:  # it finished between the listing and the kill
            raise QueryError("Trino: NOT_SUPPORTED: Target query is not running: q_1")
        return [], []

    monkeypatch.setattr(batch, "run_query", run_query)
    assert batch.kill_stale_writes(Config(), ["batch.t__b1"]) == ["q_1", "q_2"]
    assert len(killed) == 2

    def refused(config: Config, sql: str, params: object = None) -> tuple[list[str], list[list[str]]]:
        if "system.runtime.queries" in sql:
            return ["query_id", "query"], [["q_3", "insert into \"lake\".\"batch\".\"t__b1\" select 3"]]
        raise QueryError("Trino: PERMISSION_DENIED: Cannot kill query q_3")

    monkeypatch.setattr(batch, "run_query", refused)
    with pytest.raises(QueryError, match="PERMISSION_DENIED"):
        batch.kill_stale_writes(Config(), ["batch.t__b1"])


def test_a_view_reads_the_runs_counted_copies_only_when_they_are_judged_from_what_it_needs() -> None:
    from lambdalake.batch import Boundary, _covers, counted_table
    from lambdalake.derive import counted_columns
    from lambdalake.state import CountedCopies

    layers = Layers(topic="events")
    boundary = Boundary(B, 42)
    view = load_views()[0]
    columns = sorted(counted_columns(view))
    counted = CountedCopies(counted_table(layers), "raw.events", 42, B, 3600, SINCE, 7, columns, 1, 10, 1.0)
    assert counted_table(layers) == "batch.raw__events__counted"
    assert _covers(counted, layers, view, boundary, 3600, SINCE)
    assert _covers(counted, layers, view, boundary, 3600, B)  # a later start: its copies are judged, with their horizon
    assert not _covers(counted, layers, view, boundary, 3600, None)  # a full run needs every copy judged
    assert not _covers(counted, layers, view, boundary, 3600, SINCE.replace(minute=0))  # an earlier start
    assert _covers(dataclasses.replace(counted, ingest_from=None), layers, view, boundary, 3600, None)
    assert not _covers(counted, layers, view, Boundary(B, 41), 3600, SINCE)  # another snapshot
    assert not _covers(counted, layers, view, Boundary(SINCE, 42), 3600, SINCE)  # another B
    assert not _covers(counted, layers, view, boundary, 60, SINCE)  # another horizon
    assert not _covers(counted, Layers(topic="events", events_table="raw.other"), view, boundary, 3600, SINCE)
    assert not _covers(None, layers, view, boundary, 3600, SINCE)
    assert not _covers(dataclasses.replace(counted, columns=columns[1:]), layers, view, boundary, 3600, SINCE)
