"""Reprocessing requests refused before any engine is asked, and the names a version gets."""

from __future__ import annotations

import json

import pytest

from lambdalake.config import Config, FlinkConfig
from lambdalake.errors import ConfigError
from lambdalake.kappa import ReprocessError, check_request, version_job, version_table
from lambdalake.speed import SpeedTarget
from lambdalake.views import ViewError


def test_unknown_view_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ViewError, match=r"unknown view 'nope'; views in .*events_per_type"):
        check_request(Config(), "nope", 2)


@pytest.mark.parametrize("name", ["Events", "events; drop table raw.events", "x'--", "", "1abc"])
def test_names_that_could_reach_sql_are_refused(name: str) -> None:
    with pytest.raises(ViewError, match="must be lowercase letters"):
        check_request(Config(), name, 2)


def test_the_version_must_be_the_one_the_definition_states() -> None:
    with pytest.raises(ReprocessError, match="events_per_type.yaml defines version 1, not 2"):
        check_request(Config(), "events_per_type", 2)


def test_a_shared_speed_job_target_survives_its_table_property() -> None:
    target = SpeedTarget("events", "group", "job", "__t1", ("a", "b"))
    assert SpeedTarget.from_record(json.loads(json.dumps(target.to_record()))) == target


@pytest.mark.parametrize("version", [0, -1, True, "2", 1.5])
def test_versions_must_be_positive_integers(version: object) -> None:
    with pytest.raises(ReprocessError, match="must be a positive integer"):
        check_request(Config(), "events_per_type", version)


def test_a_version_has_its_own_table_and_job() -> None:
    assert version_table("clicks", 3) == "speed.clicks__v3"
    assert version_job("clicks", 3) == "lambdalake-kappa-clicks-v3"


@pytest.mark.parametrize(("text", "seconds"), [("5 s", 5), ("500 ms", 0.5), ("1 min", 60), ("2000", 2)])
def test_checkpoint_interval_in_seconds(text: str, seconds: float) -> None:
    assert FlinkConfig(checkpoint_interval=text).checkpoint_seconds == seconds


def test_a_bad_checkpoint_interval_names_the_key() -> None:
    with pytest.raises(ConfigError, match="flink.checkpoint_interval"):
        _ = FlinkConfig(checkpoint_interval="soon").checkpoint_seconds
