"""A clickstream like a shop's logs, with faults on request: `lambdalake produce`.

Users browse in sessions that follow a purchase funnel (page views, searches, clicks, carts,
purchases); pages and products are Zipf-distributed. With a seed, the sequence of records is
the same on every run (only event times follow the wall clock). On request it sends late
events, duplicates (the same record again) and malformed records of every kind in
MALFORMED_KINDS, and counts exactly what it sent of each kind.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import accumulate

from lambdalake.events import MAX_PAYLOAD_BYTES

#: each kind of bad record the generator sends, and the reason the ingest job must give for it
MALFORMED_KINDS: dict[str, str] = {
    "not_json": "not_json",
    "truncated_json": "truncated_json",
    "empty": "empty",
    "json_array": "not_an_object",
    "missing_field": "missing_field",
    "wrong_type": "wrong_type",
    "unknown_event_type": "unknown_event_type",
    "unparseable_event_time": "bad_event_time",
    "event_time_year_1900": "absurd_event_time",
    "event_time_year_3000": "absurd_event_time",
    "negative_amount": "negative_amount",
    "oversized": "oversized",
}
#: kinds of records the ingest job must accept
ACCEPTED_KINDS = ("valid", "late", "duplicate")

#: (step, probability of going on to it from the step before)
FUNNEL = (("search", 0.6), ("click", 0.7), ("add_to_cart", 0.35), ("purchase", 0.5))


@dataclass(frozen=True)
class Faults:
    late_fraction: float = 0.0
    late_max: timedelta = timedelta(hours=1)
    duplicate_fraction: float = 0.0
    malformed_fraction: float = 0.0

    def __post_init__(self) -> None:
        total = self.late_fraction + self.duplicate_fraction + self.malformed_fraction
        if min(self.late_fraction, self.duplicate_fraction, self.malformed_fraction) < 0 or total > 1:
            raise ValueError("fault fractions must be >= 0 and add up to at most 1")


@dataclass(frozen=True)
class Record:
    kind: str
    key: bytes
    value: bytes


@dataclass
class Session:
    user_id: str
    session_id: str
    steps: deque[str] = field(default_factory=deque)


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return list(accumulate(1 / (k ** s) for k in range(1, n + 1)))


class EventGenerator:
    """An endless, seeded stream of Records; `clock` gives the wall time (UTC)."""

    def __init__(self, seed: int = 0, faults: Faults = Faults(), users: int = 2000, pages: int = 300,
                 products: int = 1000, active_sessions: int = 64,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.rng = random.Random(seed)
        self.faults = faults
        self.clock = clock
        self.users = [f"user-{i:05d}" for i in range(users)]
        self.pages = [f"/page/{i}" for i in range(pages)]
        self.products = [f"product-{i:05d}" for i in range(products)]
        self._page_weights = _zipf_weights(pages)
        self._product_weights = _zipf_weights(products)
        self._sessions = [self._new_session() for _ in range(active_sessions)]
        self._recent: deque[Record] = deque(maxlen=500)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _new_session(self) -> Session:
        steps = deque(["page_view"] * self.rng.randint(1, 4))
        for step, probability in FUNNEL:
            if self.rng.random() >= probability:
                break
            steps.append(step)
        return Session(self.rng.choice(self.users), self._uuid(), steps)

    def _event(self, late: bool = False) -> dict[str, object]:
        index = self.rng.randrange(len(self._sessions))
        session = self._sessions[index]
        event_type = session.steps.popleft()
        if not session.steps:
            self._sessions[index] = self._new_session()
        moment = self.clock()
        if late:
            moment -= timedelta(seconds=self.rng.uniform(1, self.faults.late_max.total_seconds()))
        with_product = event_type in ("click", "add_to_cart", "purchase")
        event: dict[str, object] = {
            "event_id": self._uuid(),
            "user_id": session.user_id,
            "session_id": session.session_id,
            "event_type": event_type,
            "page": self.rng.choices(self.pages, cum_weights=self._page_weights)[0],
            "product_id": self.rng.choices(self.products, cum_weights=self._product_weights)[0]
            if with_product else None,
            "amount": float(Decimal(self.rng.randint(199, 49999)) / 100) if event_type == "purchase" else None,
            "event_time": moment.isoformat(timespec="milliseconds"),
            "properties": {"device": self.rng.choice(("web", "ios", "android")),
                           "referrer": self.rng.choice(("direct", "search", "ads", "email"))},
        }
        if event_type == "search":
            event["properties"]["query"] = f"q{self.rng.randint(1, 500)}"  # type: ignore[index]
        return event

    def _malformed(self, kind: str) -> bytes:
        event = self._event()
        if kind == "not_json":
            return f"GET {event['page']} HTTP/1.1 200".encode()
        if kind == "truncated_json":
            text = json.dumps(event)
            return text[: len(text) // 2].encode()
        if kind == "empty":
            return b""
        if kind == "json_array":
            return json.dumps([event]).encode()
        if kind == "missing_field":
            del event[self.rng.choice(("event_id", "user_id", "event_type", "event_time"))]
        elif kind == "wrong_type":
            event[self.rng.choice(("user_id", "page", "session_id"))] = self.rng.randint(1, 10**6)
        elif kind == "unknown_event_type":
            event["event_type"] = "teleport"
        elif kind == "unparseable_event_time":
            event["event_time"] = "yesterday at noon"
        elif kind == "event_time_year_1900":
            event["event_time"] = "1900-01-01T00:00:00+00:00"
        elif kind == "event_time_year_3000":
            event["event_time"] = "3000-01-01T00:00:00+00:00"
        elif kind == "negative_amount":
            event["event_type"], event["amount"] = "purchase", -round(self.rng.uniform(1, 500), 2)
        elif kind == "oversized":
            event["properties"] = {"blob": "x" * (MAX_PAYLOAD_BYTES + 1024)}
        else:
            raise ValueError(f"unknown malformed kind {kind!r}")
        return json.dumps(event).encode()

    def records(self) -> Iterator[Record]:
        faults, kinds = self.faults, list(MALFORMED_KINDS)
        while True:
            draw = self.rng.random()
            if draw < faults.malformed_fraction:
                kind = kinds[self.rng.randrange(len(kinds))]
                yield Record(kind, self.rng.choice(self.users).encode(), self._malformed(kind))
                continue
            draw -= faults.malformed_fraction
            if draw < faults.duplicate_fraction and self._recent:
                again = self.rng.choice(self._recent)
                yield Record("duplicate", again.key, again.value)
                continue
            draw -= faults.duplicate_fraction
            late = draw < faults.late_fraction
            event = self._event(late=late)
            record = Record("late" if late else "valid", str(event["user_id"]).encode(), json.dumps(event).encode())
            self._recent.append(record)
            yield record


@dataclass
class Summary:
    """Exactly what was sent, by kind, and what the ingest job must therefore do with it."""

    topic: str
    by_kind: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.by_kind.values())

    @property
    def expected_accepted(self) -> int:
        return sum(self.by_kind[kind] for kind in ACCEPTED_KINDS)

    @property
    def expected_rejected(self) -> dict[str, int]:
        reasons: Counter[str] = Counter()
        for kind, reason in MALFORMED_KINDS.items():
            if self.by_kind[kind]:
                reasons[reason] += self.by_kind[kind]
        return dict(reasons)

    def to_dict(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "sent": self.sent,
            "by_kind": dict(sorted(self.by_kind.items())),
            "expected_accepted": self.expected_accepted,
            "expected_rejected": self.expected_rejected,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.sent / self.seconds, 1) if self.seconds else None,
        }
