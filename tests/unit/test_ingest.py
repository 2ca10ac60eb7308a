from __future__ import annotations

import dataclasses

import pytest

from lambdalake.config import Config
from lambdalake.errors import ConfigError
from lambdalake.ingest import IngestTarget
from lambdalake.jobs import setting_args


def test_default_target_is_the_platform_topic_and_raw_tables() -> None:
    target = IngestTarget.default(Config())
    assert (target.topic, target.events_table, target.rejected_table) == ("events", "raw.events",
                                                                          "raw.events_rejected")


@pytest.mark.parametrize(("field", "value"), [
    ("topic", "events'; drop"), ("group_id", ""), ("job_name", "a b"), ("events_table", "raw.events--"),
])
def test_names_that_reach_sql_are_validated(field: str, value: str) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(IngestTarget.default(Config()), **{field: value})


def test_job_settings_become_one_setting_argument_each() -> None:
    assert setting_args({"execution.checkpointing.interval": "2 s", "pipeline.object-reuse": "true"}) == [
        "--setting", "execution.checkpointing.interval=2 s", "--setting", "pipeline.object-reuse=true"]
