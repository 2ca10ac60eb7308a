"""Distinct counts on the real engines: approximate where speed answers, exact where batch does.

visitors_per_page counts unique users per page per hour. The test sends page views of a fixed
seed (thousands of users per bucket, so Trino's HyperLogLog sketches are dense and err), with
duplicate copies under other keys and events of other types, through its own ingest and speed
jobs, and computes the truth here, with Python sets. It checks:

- before any batch run, every bucket is flagged approximate and lies within 3 standard errors of
  the truth, and the median relative error is within one;
- after a batch run, every bucket is exact and equals the truth; a second wave of users then
  makes the buckets it touches approximate again (within 3σ at every poll), and leaves the
  others exact;
- rolling hours up to the whole window by merging `visitors_sketch` is right (within 3σ), and
  adding hourly counts is not;
- the accuracy report holds one row per bucket each batch run took over from speed, with
  serving's answer before the run and the recount.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from lambdalake.accuracy import report
from lambdalake.batch import Layers, run_once
from lambdalake.config import Config
from lambdalake.producer import make_producer
from lambdalake.query import run_query
from lambdalake.views import DISTINCT_ERROR, lambda_views
from tests.integration.conftest import deployed_layers, wait_for_boundary

VIEW = next(v for v in lambda_views() if v.name == "visitors_per_page")
PAGES = [f"/page/{i}" for i in range(8)]
#: (bucket, page) -> the users who viewed it: the truth
Truth = dict[tuple[datetime, str], set[str]]


@pytest.fixture(scope="module")
def layers(config: Config) -> Iterator[Layers]:
    with deployed_layers(config, "distinct", (VIEW.name,)) as layers:
        yield layers


def send_wave(config: Config, topic: str, rng: random.Random, hours: list[datetime], users: list[str],
              events: int, truth: Truth) -> int:
    """Send `events` page views by these users in these hours (plus a copy of one in ten under
    another key, and as many clicks, which the view filters out); add them to the truth. Returns
    the records sent."""
    producer, sent = make_producer(config), 0
    for _ in range(events):
        hour, page, user = rng.choice(hours), rng.choice(PAGES), rng.choice(users)
        event = {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "user_id": user,
                 "session_id": f"s-{user}", "event_type": "page_view", "page": page,
                 "event_time": (hour + timedelta(seconds=rng.uniform(0, 3599))).isoformat(timespec="milliseconds")}
        value = json.dumps(event).encode()
        producer.produce(topic, key=user.encode(), value=value)
        sent += 2
        if rng.random() < 0.1:
            producer.produce(topic, key=None, value=value)  # a retry without a key: maybe another partition
            sent += 1
        click = {**event, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "event_type": "click",
                 "user_id": f"clicker-{rng.randrange(10**6)}"}
        producer.produce(topic, key=None, value=json.dumps(click).encode())
        producer.poll(0)
        truth[(hour, page)].add(user)
    assert producer.flush(60) == 0
    return sent


def serving_rows(config: Config, layers: Layers) -> dict[tuple[datetime, str], tuple[int, bool]]:
    _, rows = run_query(config, "select event_time_bucket, page, visitors, visitors_is_exact "
                                f"from {layers.serving(VIEW)}")
    return {(row[0].astimezone(timezone.utc), row[1]): (row[2], row[3]) for row in rows}


def relative_error(value: int, truth: int) -> float:
    return abs(value - truth) / truth


def speed_holds(config: Config, layers: Layers, truth: Truth) -> bool:
    """Whether the speed table holds exactly the truth's users (it keeps each window's distinct ids)."""
    _, rows = run_query(config, "select event_time_bucket, page, cardinality(array_distinct(flatten(array_agg("
                                f"visitors_ids)))) from {layers.speed(VIEW)} group by 1, 2")
    return {(r[0].astimezone(timezone.utc), r[1]): r[2] for r in rows} == {k: len(u) for k, u in truth.items()}


def wait_for_speed(config: Config, layers: Layers, truth: Truth, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not speed_holds(config, layers, truth):
        assert time.monotonic() < deadline, "the speed table never held the truth's users"
        time.sleep(3)


def wait_for_ingest(config: Config, layers: Layers, sent: int, timeout: float = 300) -> None:
    """Until the master dataset holds every record sent (all valid, copies included)."""
    deadline = time.monotonic() + timeout
    while run_query(config, f"select count(*) from {layers.events_table}")[1][0][0] < sent:
        assert time.monotonic() < deadline, "the ingest job never landed every page view"
        time.sleep(3)


def batch_run_past_every_event(config: Config, layers: Layers, sent: int) -> None:
    """One batch run, at a B after every record sent (B is a whole minute below which every
    partition is complete, as far as the ingest job's heartbeats say: wait for that first)."""
    wait_for_ingest(config, layers, sent)
    newest = run_query(config, f"select max(ingest_time) from {layers.events_table}")[1][0][0]
    wait_for_boundary(config, layers, after=newest, timeout=240)
    assert run_once(config, layers, [VIEW.name])[VIEW.name] is not None


def accuracy_rows(config: Config, layers: Layers) -> dict[str, dict[tuple[datetime, str], tuple[float, float]]]:
    """batch table -> (bucket, page) -> (speed answer, batch answer), from meta.view_accuracy."""
    _, rows = run_query(config, "select batch_table, event_time_bucket, dimensions, measure, speed_answer, "
                                "batch_answer from meta.view_accuracy where view = ?", [layers.serving(VIEW)])
    found: dict[str, dict[tuple[datetime, str], tuple[float, float]]] = defaultdict(dict)
    for table, bucket, dimensions, measure, speed_answer, batch_answer in rows:
        assert measure == "visitors"
        key = (bucket.astimezone(timezone.utc), json.loads(dimensions)["page"])
        assert key not in found[table], f"{key} recorded twice for {table}"
        found[table][key] = (speed_answer, batch_answer)
    return found


def rolled_up(config: Config, layers: Layers) -> dict[str, tuple[int, int]]:
    """page -> (the sketches merged over every hour, the hourly counts added up)."""
    _, rows = run_query(config, "select page, cardinality(merge(cast(visitors_sketch as HyperLogLog))), sum(visitors) "
                                f"from {layers.serving(VIEW)} group by page")
    return {row[0]: (row[1], row[2]) for row in rows}


def assert_rolls_up(config: Config, layers: Layers, truth: Truth) -> None:
    by_page: dict[str, set[str]] = defaultdict(set)
    for (_, page), users in truth.items():
        by_page[page] |= users
    answers = rolled_up(config, layers)
    assert answers.keys() == by_page.keys()
    for page, (merged, added) in answers.items():
        assert relative_error(merged, len(by_page[page])) <= 3 * DISTINCT_ERROR, (page, merged, len(by_page[page]))
        assert added > len(by_page[page]) * (1 + 3 * DISTINCT_ERROR), \
            "users come back hour after hour: adding hourly counts overcounts, beyond the sketches' error"


def test_distinct_counts_are_approximate_in_speed_exact_in_batch_and_roll_up(config: Config, layers: Layers) -> None:
    rng = random.Random(20)
    now = datetime.now(timezone.utc)
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [current_hour - timedelta(hours=h) for h in (3, 2, 1)]
    truth: Truth = defaultdict(set)
    sent = send_wave(config, layers.topic, rng, hours, [f"user-{i:05d}" for i in range(4000)], 24_000, truth)
    wait_for_speed(config, layers, truth)

    # speed alone: every bucket approximate, within its stated error
    answers = serving_rows(config, layers)
    assert answers.keys() == truth.keys()
    assert not any(exact for _, exact in answers.values()), "a bucket answered by speed claims to be exact"
    errors = [relative_error(value, len(truth[key])) for key, (value, _) in answers.items()]
    assert max(errors) <= 3 * DISTINCT_ERROR, sorted(errors)[-3:]
    assert statistics.median(errors) <= DISTINCT_ERROR, statistics.median(errors)
    assert max(errors) > 0, "every estimate was exact: the sketches never erred, so the test proves nothing"
    assert_rolls_up(config, layers, truth)

    # a batch run below a B after every event: exact everywhere
    speed_answers = answers
    batch_run_past_every_event(config, layers, sent)
    assert serving_rows(config, layers) == {key: (len(users), True) for key, users in truth.items()}

    # a second wave of users in the last hour: that hour's buckets mix batch and speed; the
    # others stay exact, at every poll until the speed table holds the second wave
    first_wave = {key: len(users) for key, users in truth.items()}
    second = send_wave(config, layers.topic, rng, hours[-1:], [f"new-user-{i:05d}" for i in range(2000)], 6_000, truth)
    deadline, polls, caught_up = time.monotonic() + 300, 0, False
    while not caught_up:
        caught_up = speed_holds(config, layers, truth)  # before serving's answer: then it holds everything
        answers = serving_rows(config, layers)
        polls += 1
        for key, (value, exact) in answers.items():
            if key[0] != hours[-1]:
                assert (value, exact) == (first_wave[key], True), f"{key}: batch alone answers it"
            elif exact:
                assert value == first_wave[key], f"{key}: exact, so the second wave has not reached it"
            else:
                assert relative_error(value, len(truth[key])) <= 3 * DISTINCT_ERROR or value < len(truth[key]), \
                    (key, value, len(truth[key]))
        assert time.monotonic() < deadline, "the second wave never reached the speed table"
        time.sleep(1)
    mixed = {key for key, (_, exact) in answers.items() if not exact}
    assert mixed == {key for key in truth if key[0] == hours[-1]}
    assert all(relative_error(answers[key][0], len(truth[key])) <= 3 * DISTINCT_ERROR for key in mixed)
    assert polls >= 2
    assert_rolls_up(config, layers, truth)
    mixed_answers = {key: answers[key][0] for key in mixed}

    # the accuracy report: one row per bucket each batch run took over from speed, what serving
    # answered before the run beside the recount
    batch_run_past_every_event(config, layers, sent + second)
    recorded = accuracy_rows(config, layers)
    assert len(recorded) == 2, recorded.keys()
    first_run, second_run = sorted(recorded.values(), key=len, reverse=True)
    assert first_run == {key: (float(speed_answers[key][0]), float(first_wave[key])) for key in first_wave}
    assert second_run == {key: (float(value), float(len(truth[key]))) for key, value in mixed_answers.items()}
    spread = {s.measure: s for s in report(config, layers.serving(VIEW))}["visitors"]
    assert spread.buckets == len(first_wave) + len(mixed) and 0 < spread.max <= 3 * DISTINCT_ERROR
