"""The clickstream event: its fields, and the rules that accept or reject one Kafka record.

This module is the one definition of a valid event. It imports only the standard library,
because it runs in two places: `lambdalake produce` (platform virtualenv) and the ingest job's
Python workers (Flink virtualenv).

A record is accepted when it is a JSON object with every required field of the right type,
a known `event_type`, an ISO-8601 `event_time` with a time zone within
[ingest time - MAX_LATENESS, ingest time + MAX_CLOCK_SKEW], and for purchases a non-negative
`amount`. Anything else is rejected with one of REASONS and a human-readable detail.

A record imported from a history file (lambdalake.imports) carries the IMPORT_* Kafka headers: it
is exempt from MAX_LATENESS (history is older than any lateness window), and every other rule
applies to it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

EVENT_TYPES = ("page_view", "search", "click", "add_to_cart", "purchase")
REQUIRED_FIELDS = ("event_id", "user_id", "session_id", "event_type", "page", "event_time")
#: records above this many bytes are rejected (Kafka's default largest message)
MAX_PAYLOAD_BYTES = 1024 * 1024
#: the part of a rejected payload that is kept (its full size is kept too)
KEPT_PAYLOAD_CHARS = 64 * 1024
#: how old an event may be, against the time Kafka received it, before its clock is not believed
MAX_LATENESS = timedelta(days=30)
#: how far ahead of the Kafka timestamp a producer's clock may run
MAX_CLOCK_SKEW = timedelta(days=1)
MAX_PROPERTIES = 32
AMOUNT_LIMIT = Decimal("1e10")

#: Kafka headers of a record imported from a history file: the file's SHA-256, its path under the
#: import root, and the record's row in it (1-based); raw.events keeps the path and row
IMPORT_SHA256_HEADER = "lambdalake-import-sha256"
IMPORT_FILE_HEADER = "lambdalake-import-file"
IMPORT_ROW_HEADER = "lambdalake-import-row"

#: every reason a record can be rejected for
REASONS = (
    "oversized",
    "empty",
    "not_json",
    "truncated_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_event_type",
    "bad_event_time",
    "absurd_event_time",
    "negative_amount",
    "validator_error",
)


@dataclass(frozen=True)
class Accepted:
    event_id: str
    user_id: str
    session_id: str
    event_type: str
    page: str
    product_id: str | None
    #: decimal as text, two places (e.g. "12.50"); None unless given
    amount: str | None
    event_time_ms: int
    properties: dict[str, str]


@dataclass(frozen=True)
class Rejected:
    reason_code: str
    reason: str


class _Reject(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _string(record: dict[str, Any], name: str, *, nullable: bool = False) -> str | None:
    value = record.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Reject("wrong_type", f"{name} must be a non-empty string, got {type(value).__name__} {value!r:.40}")
    return value


def _event_time(value: Any, ingest_ms: int, imported: bool) -> int:
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"event_time must be an ISO-8601 string, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Reject("bad_event_time", f"event_time {value!r:.40} is not ISO-8601") from None
    if moment.tzinfo is None:
        raise _Reject("bad_event_time", f"event_time {value!r:.40} has no time zone")
    ingest = datetime.fromtimestamp(ingest_ms / 1000, tz=timezone.utc)
    latest = ingest + MAX_CLOCK_SKEW
    if imported and moment > latest:
        raise _Reject("absurd_event_time", f"event_time {value} is after {latest:%Y-%m-%d}, past its ingest time")
    if not imported and not ingest - MAX_LATENESS <= moment <= latest:
        raise _Reject("absurd_event_time",
                      f"event_time {value} is outside [{ingest - MAX_LATENESS:%Y-%m-%d}, "
                      f"{latest:%Y-%m-%d}] around its ingest time")
    return int(moment.timestamp() * 1000)


def _amount(record: dict[str, Any]) -> str | None:
    value = record.get("amount")
    if value is None:
        if record["event_type"] == "purchase":
            raise _Reject("missing_field", "amount is required for a purchase")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Reject("wrong_type", f"amount must be a number, got {type(value).__name__}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _Reject("wrong_type", f"amount {value!r:.40} is not a number") from None
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        raise _Reject("wrong_type", f"amount {value!r:.40} is out of range")
    if amount < 0:
        raise _Reject("negative_amount", f"amount {amount} is negative")
    cents = amount.quantize(Decimal("0.01"))
    # rounding can reach the limit (9999999999.995): the tables' DECIMAL(12, 2) has no room for it
    if cents >= AMOUNT_LIMIT:
        raise _Reject("wrong_type", f"amount {value!r:.40} is out of range once rounded to cents")
    return str(cents)


def _properties(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_PROPERTIES:
        raise _Reject("wrong_type", f"properties must be an object of at most {MAX_PROPERTIES} entries")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def validate(payload: bytes | None, ingest_ms: int, *, imported: bool = False) -> Accepted | Rejected:
    """Accept or reject one Kafka record value, received by Kafka at ingest_ms (epoch millis);
    imported: it came from a history file (exempt from MAX_LATENESS)."""
    try:
        return _validate(payload or b"", ingest_ms, imported)
    except _Reject as reject:
        return Rejected(reject.code, f"{reject.code}: {reject.detail}")
    except Exception as exc:  # noqa: BLE001 - a record the rules did not foresee must not stop the job
        return Rejected("validator_error", f"validator_error: {type(exc).__name__}: {exc}"[:500])


def _validate(payload: bytes, ingest_ms: int, imported: bool) -> Accepted:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _Reject("oversized", f"{len(payload)} bytes, more than {MAX_PAYLOAD_BYTES}")
    text = payload.decode("utf-8", errors="replace").strip()
    if not text:
        raise _Reject("empty", "the record has no content")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        # a document that starts like an object but does not parse was cut short
        code = "truncated_json" if text.startswith("{") else "not_json"
        raise _Reject(code, f"{error.msg} at char {error.pos}") from None
    if not isinstance(record, dict):
        raise _Reject("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    missing = [name for name in REQUIRED_FIELDS if record.get(name) is None]
    if missing:
        raise _Reject("missing_field", f"missing {', '.join(missing)}")
    event_id = _string(record, "event_id")
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise _Reject("wrong_type", f"event_id {event_id!r:.40} is not a UUID") from None
    event_type = _string(record, "event_type")
    if event_type not in EVENT_TYPES:
        raise _Reject("unknown_event_type", f"event_type {event_type!r:.40} is not one of {', '.join(EVENT_TYPES)}")
    return Accepted(
        event_id=str(event_id),
        user_id=str(_string(record, "user_id")),
        session_id=str(_string(record, "session_id")),
        event_type=event_type,
        page=str(_string(record, "page")),
        product_id=_string(record, "product_id", nullable=True),
        amount=_amount(record),
        event_time_ms=_event_time(record["event_time"], ingest_ms, imported),
        properties=_properties(record.get("properties")),
    )


def jvm_rules() -> str:
    """These rules' numbers as JSON, for the JVM's fast path (flink_jobs/functions AcceptedEvent),
    which accepts only records it is sure these rules accept, with the same fields, and leaves
    every other record to `validate`."""
    return json.dumps({
        "event_types": list(EVENT_TYPES),
        "max_payload_bytes": MAX_PAYLOAD_BYTES,
        "max_lateness_us": MAX_LATENESS // timedelta(microseconds=1),
        "max_clock_skew_us": MAX_CLOCK_SKEW // timedelta(microseconds=1),
        "max_properties": MAX_PROPERTIES,
        "amount_limit": str(AMOUNT_LIMIT),
    })


def kept_payload(payload: bytes | None) -> str:
    """What a rejected row keeps of its payload: text, cut to KEPT_PAYLOAD_CHARS characters."""
    return (payload or b"").decode("utf-8", errors="replace")[:KEPT_PAYLOAD_CHARS]
