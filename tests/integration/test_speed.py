"""The speed job on the real engines: each view's speed table totals equal the truth. (Through a
TaskManager kill: tests/integration/test_exactness.py, at the serving layer, and tests/cluster.)

The truth is computed here, from the records the generator made (each event_id once, the
first sent), with plain Python: not with the platform's validation or derived SQL.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.generator import ACCEPTED_KINDS, EventGenerator, Faults, Record
from lambdalake.jobs import cancel
from lambdalake.producer import make_producer
from lambdalake.query import run_query
from lambdalake.speed import SpeedTarget, start
from lambdalake.views import lambda_views

FAULTS = Faults(late_fraction=0.15, late_max=timedelta(hours=3), duplicate_fraction=0.1, malformed_fraction=0.1)


@pytest.fixture(scope="module")
def target(config: Config) -> Iterator[SpeedTarget]:
    suffix = uuid.uuid4().hex[:8]
    target = SpeedTarget(f"test-speed-{suffix}", f"test-speed-{suffix}", f"test-speed-{suffix}", f"__t{suffix}")
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(target.topic, num_partitions=3, replication_factor=config.kafka.replication_factor)])[target.topic].result(30)
    yield target
    cancel(config, target.job_name)
    admin.delete_topics([target.topic])[target.topic].result(30)
    catalog = load_catalog(config)
    for view in lambda_views():
        if catalog.table_exists(target.table(view)):
            catalog.purge_table(target.table(view))


def send(config: Config, topic: str, records: list[Record]) -> None:
    """Send the records; a duplicate goes out with a null key, as a retrying client without keys
    sends it, so it may land in another partition than its first copy (which copy counts does not
    change the totals: the copies are the same bytes)."""
    producer = make_producer(config)
    for record in records:
        producer.produce(topic, key=None if record.kind == "duplicate" else record.key, value=record.value)
        producer.poll(0)
    assert producer.flush(60) == 0


def floor(moment: str, minutes: int) -> datetime:
    epoch = datetime.fromisoformat(moment).timestamp()
    return datetime.fromtimestamp(epoch - epoch % (minutes * 60), tz=timezone.utc)


def first_good_events(records: list[Record]) -> list[dict]:  # type: ignore[type-arg]
    """The first copy of each good event, in the order sent."""
    seen, events = set(), []
    for record in records:
        if record.kind in ACCEPTED_KINDS:
            event = json.loads(record.value)
            if event["event_id"] not in seen:
                seen.add(event["event_id"])
                events.append(event)
    return events


def truth(records: list[Record]) -> dict[str, dict[tuple, tuple]]:
    """Each view's totals by (event-time bucket, dimension), from the first copy of each good event."""
    return aggregate(first_good_events(records))


def aggregate(events: list[dict]) -> dict[str, dict[tuple, tuple]]:  # type: ignore[type-arg]
    """Each view's totals by (event-time bucket, dimension) over these events, each counted once."""
    per_type = Counter((floor(e["event_time"], 1), e["event_type"]) for e in events)
    page_views = Counter((floor(e["event_time"], 1), e["page"]) for e in events if e["event_type"] == "page_view")
    purchases: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), None])
    for e in events:
        if e["event_type"] == "purchase":
            amount = Decimal(str(e["amount"])).quantize(Decimal("0.01"))
            row = purchases[(floor(e["event_time"], 60), e["product_id"])]
            row[0] += 1
            row[1] += amount
            row[2] = amount if row[2] is None else max(row[2], amount)
    visitors: dict[tuple, set] = defaultdict(set)  # type: ignore[type-arg]
    for e in events:
        if e["event_type"] == "page_view":
            visitors[(floor(e["event_time"], 60), e["page"])].add(e["user_id"])
    return {
        "events_per_type": {k: (n,) for k, n in per_type.items()},
        "visitors_per_page": {k: (len(users),) for k, users in visitors.items()},
        "page_views_per_page": {k: (n,) for k, n in page_views.items()},
        "purchases_per_product": {k: tuple(v) for k, v in purchases.items()},
    }


SPEED_TOTALS = {
    "events_per_type": "select event_time_bucket, event_type, sum(events) from {t} group by 1, 2",
    "page_views_per_page": "select event_time_bucket, page, sum(page_views) from {t} group by 1, 2",
    "purchases_per_product": "select event_time_bucket, product_id, sum(purchases), sum(revenue), "
                             "max(largest_purchase) from {t} group by 1, 2",
    # the speed table keeps each window's distinct users: united, they are the exact count
    "visitors_per_page": "select event_time_bucket, page, "
                         "cardinality(array_distinct(flatten(array_agg(visitors_ids)))) from {t} group by 1, 2",
}


def speed_totals(config: Config, target: SpeedTarget) -> dict[str, dict[tuple, tuple]]:
    totals = {}
    for view in lambda_views():
        _, rows = run_query(config, SPEED_TOTALS[view.name].format(t=target.table(view)))
        totals[view.name] = {(row[0].astimezone(timezone.utc), row[1]): tuple(row[2:]) for row in rows}
    return totals


def wait_for(config: Config, target: SpeedTarget, expected: dict, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (actual := speed_totals(config, target)) != expected:
        if time.monotonic() > deadline:
            for name in expected:
                missing = {k: v for k, v in expected[name].items() if actual[name].get(k) != v}
                extra = {k: v for k, v in actual[name].items() if k not in expected[name]}
                print(name, "differs at", list(missing.items())[:5], "extra", list(extra.items())[:5])
            pytest.fail(f"speed tables never matched the truth within {timeout}s")
        time.sleep(3)


def test_speed_views_equal_the_truth_while_events_stream(config: Config, target: SpeedTarget) -> None:
    records = list(islice(EventGenerator(seed=21, faults=FAULTS).records(), 3000))
    assert {"late", "duplicate"} <= {r.kind for r in records}
    first, second = records[:1500], records[1500:]

    send(config, target.topic, first)
    start(config, target)
    wait_for(config, target, truth(first))

    send(config, target.topic, second)  # to the running job
    wait_for(config, target, truth(records))

    time.sleep(2 * config.speed.window_seconds + 5)  # more windows and checkpoints: nothing counted twice
    assert speed_totals(config, target) == truth(records)
