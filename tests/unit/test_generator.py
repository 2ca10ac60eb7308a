from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from itertools import islice

import pytest

from lambdalake.events import Accepted, Rejected, validate
from lambdalake.generator import ACCEPTED_KINDS, MALFORMED_KINDS, EventGenerator, Faults, Summary

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
FAULTS = Faults(late_fraction=0.1, duplicate_fraction=0.05, malformed_fraction=0.3)


def generate(seed: int, n: int, faults: Faults = FAULTS) -> list:
    return list(islice(EventGenerator(seed, faults, clock=lambda: NOW).records(), n))


def test_same_seed_same_records() -> None:
    assert generate(3, 300) == generate(3, 300)
    assert generate(3, 300) != generate(4, 300)


def test_every_record_is_judged_as_its_kind_says() -> None:
    for record in generate(11, 3000):
        result = validate(record.value, NOW_MS)
        if record.kind in ACCEPTED_KINDS:
            assert isinstance(result, Accepted), (record.kind, result)
        else:
            assert isinstance(result, Rejected) and result.reason_code == MALFORMED_KINDS[record.kind], record.kind


def test_every_bad_kind_late_and_duplicates_appear() -> None:
    kinds = Counter(r.kind for r in generate(5, 3000))
    assert set(kinds) == {*MALFORMED_KINDS, *ACCEPTED_KINDS}


def test_duplicates_repeat_an_earlier_event() -> None:
    records = generate(5, 2000)
    seen = set()
    for record in records:
        if record.kind == "duplicate":
            assert record.value in seen
        seen.add(record.value)


def test_shape_zipf_pages_funnel_and_keys() -> None:
    events = [json.loads(r.value) for r in generate(9, 5000, Faults())]
    pages = Counter(e["page"] for e in events).most_common()
    assert pages[0][1] > 5 * pages[len(pages) // 2][1]  # a few pages take most of the views
    types = Counter(e["event_type"] for e in events)
    assert types["page_view"] > types["search"] > types["click"] > types["add_to_cart"] > types["purchase"] > 0
    assert all((e["amount"] is not None) == (e["event_type"] == "purchase") for e in events)
    records = generate(9, 100, Faults())
    assert all(r.key == json.loads(r.value)["user_id"].encode() for r in records)


def test_summary_expects_what_the_ingest_job_must_do() -> None:
    summary = Summary("events")
    summary.by_kind.update({"valid": 10, "late": 2, "duplicate": 1, "event_time_year_1900": 2,
                            "event_time_year_3000": 1, "empty": 4})
    assert summary.sent == 20
    assert summary.expected_accepted == 13
    assert summary.expected_rejected == {"absurd_event_time": 3, "empty": 4}


def test_fractions_over_one_are_refused() -> None:
    with pytest.raises(ValueError, match="add up to at most 1"):
        Faults(late_fraction=0.6, malformed_fraction=0.6)
