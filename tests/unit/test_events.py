from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from lambdalake import events
from lambdalake.events import MAX_PAYLOAD_BYTES, REASONS, Accepted, Rejected, kept_payload, validate

INGEST = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
INGEST_MS = int(INGEST.timestamp() * 1000)
GOOD = {
    "event_id": "5f0c6d4e-8a55-4c1e-9d84-2a7b6a1f3c11",
    "user_id": "user-00042",
    "session_id": "s-1",
    "event_type": "purchase",
    "page": "/checkout",
    "product_id": "product-00007",
    "amount": 19.9,
    "event_time": "2026-11-26T11:59:58.250+00:00",
    "properties": {"device": "web", "items": 2},
}


def check(record: object) -> Accepted | Rejected:
    payload = record if isinstance(record, bytes) else json.dumps(record).encode()
    return validate(payload, INGEST_MS)


def test_a_good_event_is_accepted_with_normalized_fields() -> None:
    result = check(GOOD)
    assert isinstance(result, Accepted)
    assert result.amount == "19.90"
    assert result.event_time_ms == INGEST_MS - 1750
    assert result.properties == {"device": "web", "items": "2"}


def test_a_late_event_within_the_lateness_bound_is_accepted() -> None:
    late = {**GOOD, "event_time": (INGEST - timedelta(days=29)).isoformat()}
    assert isinstance(check(late), Accepted)


def test_an_imported_event_is_exempt_from_the_lateness_bound_and_from_nothing_else() -> None:
    old = json.dumps({**GOOD, "event_time": "2019-03-31T01:30:00+01:00"}).encode()
    assert isinstance(validate(old, INGEST_MS), Rejected)
    accepted = validate(old, INGEST_MS, imported=True)
    assert isinstance(accepted, Accepted) and accepted.event_time_ms == 1553992200000
    ahead = json.dumps({**GOOD, "event_time": (INGEST + timedelta(days=2)).isoformat()}).encode()
    assert validate(ahead, INGEST_MS, imported=True).reason_code == "absurd_event_time"  # type: ignore[union-attr]
    negative = json.dumps({**GOOD, "event_time": "2019-03-31T01:30:00Z", "amount": -1}).encode()
    assert validate(negative, INGEST_MS, imported=True).reason_code == "negative_amount"  # type: ignore[union-attr]


@pytest.mark.parametrize(("record", "reason"), [
    (b"x" * (MAX_PAYLOAD_BYTES + 1), "oversized"),
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"GET /index.html 200", "not_json"),
    (json.dumps(GOOD).encode()[:40], "truncated_json"),
    (b"[1, 2]", "not_an_object"),
    ({k: v for k, v in GOOD.items() if k != "event_id"}, "missing_field"),
    ({**GOOD, "user_id": None}, "missing_field"),
    ({**GOOD, "amount": None}, "missing_field"),
    ({**GOOD, "user_id": 42}, "wrong_type"),
    ({**GOOD, "page": ""}, "wrong_type"),
    ({**GOOD, "event_id": "not-a-uuid"}, "wrong_type"),
    ({**GOOD, "amount": "lots"}, "wrong_type"),
    ({**GOOD, "amount": True}, "wrong_type"),
    ({**GOOD, "properties": ["a"]}, "wrong_type"),
    ({**GOOD, "event_time": 1700000000}, "wrong_type"),
    ({**GOOD, "event_type": "teleport"}, "unknown_event_type"),
    ({**GOOD, "event_time": "yesterday at noon"}, "bad_event_time"),
    ({**GOOD, "event_time": "2026-11-26T11:59:58"}, "bad_event_time"),
    ({**GOOD, "event_time": "1900-01-01T00:00:00+00:00"}, "absurd_event_time"),
    ({**GOOD, "event_time": "3000-01-01T00:00:00+00:00"}, "absurd_event_time"),
    ({**GOOD, "amount": -5}, "negative_amount"),
])
def test_each_bad_kind_is_rejected_with_its_reason(record: object, reason: str) -> None:
    result = check(record)
    assert isinstance(result, Rejected)
    assert result.reason_code == reason
    assert reason in REASONS
    assert result.reason.startswith(f"{reason}: ") and len(result.reason) > len(reason) + 2


def test_a_missing_payload_is_empty_not_an_error() -> None:
    assert validate(None, INGEST_MS) == Rejected("empty", "empty: the record has no content")


def test_kept_payload_is_cut_and_never_fails_on_bad_utf8() -> None:
    assert len(kept_payload(b"y" * 200_000)) == 64 * 1024
    assert kept_payload(b"\xff\xfeok") .endswith("ok")
    assert kept_payload(None) == ""


def test_no_input_makes_the_validator_raise() -> None:
    import random

    rng = random.Random(0)
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))) for _ in range(2000)]
    samples += [json.dumps({**GOOD, key: value}).encode()
                for key in GOOD for value in (None, 0, -1.5, "", [], {}, "9" * 400, True, 1e308)]
    for payload in samples:
        assert isinstance(validate(payload, INGEST_MS), (Accepted, Rejected))


def test_the_jvm_fast_path_gets_the_rules_numbers_from_here() -> None:
    rules = json.loads(events.jvm_rules())
    assert rules["event_types"] == list(events.EVENT_TYPES)
    assert rules["max_payload_bytes"] == events.MAX_PAYLOAD_BYTES
    assert rules["max_lateness_us"] == 30 * 86_400 * 1_000_000
    assert rules["max_clock_skew_us"] == 86_400 * 1_000_000
    assert rules["max_properties"] == events.MAX_PROPERTIES
    assert Decimal(rules["amount_limit"]) == events.AMOUNT_LIMIT
    # it goes into Flink SQL as a string literal
    assert "'" not in events.jvm_rules()


def test_an_amount_that_rounds_up_to_the_limit_is_rejected_not_lost_in_a_decimal_overflow() -> None:
    # raw.events.amount is DECIMAL(12, 2): 10000000000.00 does not fit, and the row vanished
    result = validate(json.dumps({**GOOD, "amount": 9999999999.995}).encode(), INGEST_MS)
    assert isinstance(result, Rejected) and result.reason_code == "wrong_type", result
    result = validate(json.dumps({**GOOD, "amount": 9999999999.994}).encode(), INGEST_MS)
    assert isinstance(result, Accepted) and result.amount == "9999999999.99", result
