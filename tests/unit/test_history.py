from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from lambdalake.config import Config
from lambdalake.derive import serving_select_sql
from lambdalake.history import HistoryError, check_within_retention, parse_instant
from lambdalake.views import load_views

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def test_an_instant_without_a_zone_is_utc_and_one_with_a_zone_is_converted() -> None:
    assert parse_instant("2026-11-27 12:00:00") == NOW
    assert parse_instant("2026-11-27T13:00:00+01:00") == NOW
    with pytest.raises(HistoryError, match="'an hour ago' is not an ISO-8601 instant"):
        parse_instant("an hour ago")


def test_answers_are_kept_for_the_history_retention_only() -> None:
    config = dataclasses.replace(Config(), serving=dataclasses.replace(Config().serving, history_retention="2h"))
    check_within_retention(config, NOW - timedelta(hours=2), NOW)
    with pytest.raises(HistoryError, match=r"older than \[serving\] history_retention \(2h\)"):
        check_within_retention(config, NOW - timedelta(hours=2, seconds=1), NOW)
    with pytest.raises(HistoryError, match="in the future"):
        check_within_retention(config, NOW + timedelta(seconds=1), NOW)


def test_as_of_reads_every_table_at_the_instant_and_a_table_with_no_snapshot_then_as_empty() -> None:
    view = load_views()[0]
    at = datetime(2026, 11, 27, 12, 0, 0, 250000, tzinfo=timezone.utc)
    sql = serving_select_sql(view, "lake", "speed.x", "batch.x__b1", datetime(2026, 11, 27, 11, tzinfo=timezone.utc), at)
    assert sql.count("for timestamp as of timestamp '2026-11-27 12:00:00.250000 UTC'") == 2
    assert "ingest_bucket >= timestamp '2026-11-27 11:00:00 UTC'" in sql
    empty = serving_select_sql(view, "lake", "speed.x", None, None, at, frozenset({"speed.x"}))
    assert "for timestamp as of" not in empty and 'from "lake"."speed"."x" where false' in empty
