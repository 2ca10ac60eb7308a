from __future__ import annotations

import dataclasses

import pytest

from lambdalake.config import Config
from lambdalake.errors import ConfigError
from lambdalake.ingest import IngestTarget


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
