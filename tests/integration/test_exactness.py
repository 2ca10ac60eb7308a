"""Exact whatever partition a copy lands in: both layers count the same copy of each event.

What real producers do, on one topic and one set of jobs: copies of an event sent with a null key
or re-keyed (so in other partitions, some with other fields), copies on both sides of an
ingest-minute boundary while the speed job reads a backlog (after a stop with a savepoint, and
after a TaskManager loss) with a batch run in between, a topic whose partition count grows, and
copies further apart than the dedup horizon.

The truth is computed here, in plain Python, from what Kafka acknowledged: each copy with the
partition, offset and timestamp the broker gave it, judged by the rule the README states (a copy
counts unless an earlier copy, by timestamp then partition and offset, was stamped at most the
horizon before it). A thread compares every serving bucket with the truth of what was sent so
far, every 3 s and back to back during every batch swap: never above it; and once the speed layer
has caught up, equal to it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice

import psutil
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic, OffsetSpec

from lambdalake import jobs
from lambdalake.batch import (Boundary, Layers, choose_boundary, current_boundary, drop_layers, ensure_serving,
                              expire_speed_rows, recompute_view, run_once)
from lambdalake.config import Config
from lambdalake.flink_rest import FlinkRest
from lambdalake.generator import ACCEPTED_KINDS, EventGenerator, Record
from lambdalake.ingest import IngestTarget
from lambdalake.producer import make_producer
from lambdalake.supervisor import Supervisor
from lambdalake.speed import SpeedTarget
from lambdalake.speed import start as start_speed
from lambdalake.views import lambda_views
from tests.integration.conftest import start_both, wait_for_boundary
from tests.integration.test_batch import never_above, serving_totals
from tests.integration.test_speed import aggregate

#: kills the TaskManager, with every job on it; holds three slots
pytestmark = pytest.mark.serial

#: short, so that a test can send copies further apart than it
HORIZON_SECONDS = 40


@dataclass(frozen=True)
class Landed:
    """One good copy as Kafka acknowledged it."""

    event: dict  # type: ignore[type-arg]
    timestamp_ms: int
    partition: int
    offset: int


class Log:
    """Sends events to the topic and keeps every acknowledged copy with its stamp and position."""

    def __init__(self, config: Config, topic: str, horizon_seconds: int = HORIZON_SECONDS) -> None:
        self.config, self.topic, self.horizon_seconds = config, topic, horizon_seconds
        self.landed: list[Landed] = []
        #: every record acknowledged, good or bad
        self.acknowledged = 0
        self.lock = threading.Lock()

    def send(self, events: list[dict], *, key: str = "user", partition: int | None = None) -> None:  # type: ignore[type-arg]
        """key: "user" (the usual user_id), "none" (a null key) or "random" (a re-keyed retry)."""
        producer = make_producer(self.config)  # a new producer sees partitions added meanwhile
        landed: list[Landed] = []

        def delivered(error, message) -> None:  # type: ignore[no-untyped-def]
            assert error is None, error
            landed.append(Landed(json.loads(message.value()), message.timestamp()[1], message.partition(),
                                 message.offset()))

        for event in events:
            record_key = {"user": str(event["user_id"]).encode(), "none": None, "random": uuid.uuid4().bytes}[key]
            extra = {} if partition is None else {"partition": partition}
            producer.produce(self.topic, key=record_key, value=json.dumps(event).encode(), on_delivery=delivered,
                             **extra)
            producer.poll(0)
        assert producer.flush(60) == 0
        assert len(landed) == len(events)
        with self.lock:
            self.landed.extend(landed)
            self.acknowledged += len(landed)

    def send_records(self, records: list[Record], *, null_key_retries: bool = True) -> None:
        """Generator records, good and bad; with null_key_retries its duplicates go out with a null
        key, so the client puts them in any partition."""
        producer = make_producer(self.config)
        landed: list[Landed] = []
        acknowledged = [0]

        def delivered(error, message, good: bool) -> None:  # type: ignore[no-untyped-def]
            assert error is None, error
            acknowledged[0] += 1
            if good:
                landed.append(Landed(json.loads(message.value()), message.timestamp()[1], message.partition(),
                                     message.offset()))

        for record in records:
            key = None if null_key_retries and record.kind == "duplicate" else record.key
            good = record.kind in ACCEPTED_KINDS
            producer.produce(self.topic, key=key, value=record.value,
                             on_delivery=lambda error, message, good=good: delivered(error, message, good))
            producer.poll(0)
        assert producer.flush(60) == 0
        assert acknowledged[0] == len(records)
        with self.lock:
            self.landed.extend(landed)
            self.acknowledged += acknowledged[0]

    def truth(self) -> dict[str, dict[tuple, tuple]]:
        """Each view's totals over the copies that count, by the README's rule."""
        with self.lock:
            copies = sorted(self.landed, key=lambda c: (c.timestamp_ms, c.partition, c.offset))
        last_seen: dict[str, int] = {}
        counted = []
        for copy in copies:
            previous = last_seen.get(copy.event["event_id"])
            if previous is None or copy.timestamp_ms - previous > self.horizon_seconds * 1000:
                counted.append(copy.event)
            last_seen[copy.event["event_id"]] = copy.timestamp_ms
        return aggregate(counted)


class Watch(threading.Thread):
    """Compares serving with the truth of what was sent so far, until stopped: every `interval`
    seconds, and back to back inside `closely()` (around a batch swap)."""

    def __init__(self, config: Config, layers: Layers, log: Log, interval: float = 3.0) -> None:
        super().__init__(daemon=True)
        self.config, self.layers, self.log, self.interval = config, layers, log, interval
        self.checks = 0
        self.wrong: list[str] = []
        self.stopping = threading.Event()
        self.close = threading.Event()

    @contextmanager
    def closely(self) -> Iterator[None]:
        """Check back to back meanwhile."""
        self.close.set()
        try:
            yield
        finally:
            self.close.clear()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                serving = serving_totals(self.config, self.layers)
            except Exception:  # noqa: BLE001 - Trino restarting (tests of restarts): check again
                self.stopping.wait(1)
                continue
            # the truth is read after serving: it holds every record serving can hold
            self.wrong += never_above(serving, self.log.truth())
            self.checks += 1
            # each check is four queries, a few tenths of a CPU-second each for Trino's coordinator
            until = time.monotonic() + self.interval
            while not (self.stopping.is_set() or self.close.is_set()) and time.monotonic() < until:
                self.stopping.wait(0.1)


@dataclass
class Platform:
    config: Config
    layers: Layers
    speed: SpeedTarget
    log: Log
    watch: Watch


@pytest.fixture(scope="module")
def platform(config: Config) -> Iterator[Platform]:
    suffix = uuid.uuid4().hex[:8]
    topic = f"test-exact-{suffix}"
    layers = Layers(topic=topic, events_table=f"raw.test_exact_events_{suffix}",
                    rejected_table=f"raw.test_exact_rejected_{suffix}", suffix=f"__t{suffix}",
                    horizon_seconds=HORIZON_SECONDS)
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=config.kafka.replication_factor)])[topic].result(30)
    ingest = IngestTarget(topic, f"{topic}-ingest", layers.events_table, layers.rejected_table, f"{topic}-ingest")
    speed = SpeedTarget(topic, f"{topic}-speed", f"{topic}-speed", layers.suffix, horizon_seconds=HORIZON_SECONDS)
    start_both(config, ingest, speed, parallelism=2)
    ensure_serving(config, layers)
    log = Log(config, topic)
    watch = Watch(config, layers, log)
    watch.start()
    yield Platform(config, layers, speed, log, watch)
    watch.stopping.set()
    watch.join()
    for job in (ingest.job_name, speed.job_name):
        jobs.cancel(config, job)
    admin.delete_topics([topic])[topic].result(30)
    drop_layers(config, layers)


def events(seed: int, count: int) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(record.value) for record in islice(EventGenerator(seed=seed).records(), count)]


def shifted(moment: str, minutes: int) -> str:
    return (datetime.fromisoformat(moment) + timedelta(minutes=minutes)).isoformat()


def print_speed_job_progress(platform: Platform) -> None:
    """For a failure's report: each operator of the speed job, its subtasks' input watermarks, its
    records in and out, and the offsets its Kafka source reached in each partition."""
    admin = AdminClient({"bootstrap.servers": platform.config.kafka_bootstrap})
    partitions = admin.list_topics(platform.log.topic, timeout=10).topics[platform.log.topic].partitions
    ends = admin.list_offsets({TopicPartition(platform.log.topic, p): OffsetSpec.latest() for p in partitions})
    print("now (ms):", int(time.time() * 1000), "end offsets:",
          {tp.partition: future.result().offset for tp, future in ends.items()})
    rest = FlinkRest(platform.config)
    states = {j["jid"]: j["state"] for j in rest.jobs_overview() if j["name"] == platform.speed.job_name}
    print("speed job submissions:", states)
    job_id = next(jid for jid, job_state in states.items() if job_state == "RUNNING")
    for vertex in rest.job(job_id)["vertices"]:
        path = f"/jobs/{job_id}/vertices/{vertex['id']}"
        names = [m["id"] for m in rest._request("GET", f"{path}/subtasks/metrics", timeout=10).json()]
        wanted = [n for n in names if n in ("numRecordsIn", "numRecordsOut") or n.endswith("currentOffset")
                  or n.endswith("committedOffset")]
        metrics = rest._request("GET", f"{path}/subtasks/metrics", timeout=10,
                                params={"get": ",".join(wanted)}).json() if wanted else []
        watermarks = rest._request("GET", f"{path}/watermarks", timeout=10).json()
        print(vertex["name"][:60], vertex["status"], watermarks,
              {m["id"]: (m.get("min"), m.get("max"), m.get("sum")) for m in metrics})


def assert_exact(platform: Platform, timeout: float = 150) -> None:
    """Serving reaches the truth, and was never above it at any check so far."""
    deadline = time.monotonic() + timeout
    while (serving := serving_totals(platform.config, platform.layers)) != (expected := platform.log.truth()):
        if time.monotonic() > deadline:
            for name in expected:
                missing = {k: (serving[name].get(k), v) for k, v in expected[name].items() if serving[name].get(k) != v}
                print(name, "serving vs truth:", list(missing.items())[:5])
            print_speed_job_progress(platform)
            pytest.fail(f"serving never equalled the truth within {timeout:.0f}s")
        time.sleep(2)
    assert not platform.watch.wrong, platform.watch.wrong[:5]


def kill_taskmanager(config: Config) -> int:
    """SIGKILL the TaskManager's whole process group (its JVM and Python workers), as a lost host."""
    for proc in Supervisor(config).leftovers():
        try:
            cmdline = proc.cmdline()
        except psutil.NoSuchProcess:
            continue  # ended since it was listed (a job's Python worker, a `flink run` client)
        if any("TaskManagerRunner" in part for part in cmdline):
            os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
            return proc.pid
    raise AssertionError("no TaskManager process found")


def sleep_until_second(second: int) -> datetime:
    """Sleep until the wall clock is at `second` past the minute; return that minute's start."""
    now = datetime.now(timezone.utc)
    target = now.replace(second=second, microsecond=0)
    if target <= now:
        target += timedelta(minutes=1)
    time.sleep((target - now).total_seconds())
    return target.replace(second=0)


def batch_run_at(platform: Platform, boundary: datetime) -> None:
    """One batch run whose B is `boundary`, once the master dataset is complete up to it: the
    recompute and expiry tasks of `batch_recompute`, with that B (complete up to a later instant
    is complete up to it), however long the master dataset took to get there."""
    deadline = time.monotonic() + 180
    while (chosen := choose_boundary(platform.config, platform.layers)) is None or chosen.moment < boundary:
        assert time.monotonic() < deadline, f"the master dataset never became complete up to {boundary}"
        time.sleep(2)
    checks = platform.watch.checks
    with platform.watch.closely():
        for view in lambda_views():
            recompute_view(platform.config, platform.layers, view, Boundary(boundary, chosen.events_snapshot))
        for view in lambda_views():
            expire_speed_rows(platform.config, platform.layers, view)
        assert current_boundary(platform.config, platform.layers, lambda_views()[0]) == boundary
        assert platform.watch.checks > checks, "no check ran during the batch run"


def test_copies_in_other_partitions_count_once_wherever_they_land(platform: Platform) -> None:
    originals = events(seed=71, count=600)
    platform.log.send(originals)
    # a null key: the client picks any partition
    platform.log.send(originals[:200], key="none")
    # a retry re-keyed by another producer, with other fields: the first copy's fields still win
    retried = [{**e, "page": "/retried", "event_time": shifted(e["event_time"], minutes=-7)} for e in originals[200:400]]
    platform.log.send(retried, key="random")
    platform.log.send(originals[400:500], partition=1)
    platform.log.send(originals[400:500], partition=0)
    assert {c.partition for c in platform.log.landed} == {0, 1}
    assert_exact(platform)


@pytest.mark.parametrize("fault", ["stopped with a savepoint", "TaskManager killed"])
def test_copies_straddling_b_while_the_speed_job_reads_a_backlog(platform: Platform, fault: str) -> None:
    config, log = platform.config, platform.log
    if fault == "stopped with a savepoint":
        savepoint = jobs.stop(config, platform.speed.job_name)
    # a backlog in partition 0, so that after the fault the job reads partition 1's copies first
    log.send(events(seed=72 if fault.startswith("stopped") else 73, count=8000), partition=0)
    minute = sleep_until_second(52)
    originals = events(seed=74 if fault.startswith("stopped") else 75, count=500)
    log.send(originals, partition=0)
    boundary = sleep_until_second(1)
    assert boundary == minute + timedelta(minutes=1), "the first copies took more than 9 s to send"
    log.send(originals, key="random", partition=1)
    if fault == "TaskManager killed":
        kill_taskmanager(config)
    batch_run_at(platform, boundary)  # first copies below B, second copies at or after it
    if fault == "stopped with a savepoint":
        start_speed(config, platform.speed, parallelism=2, savepoint=savepoint)
    assert_exact(platform, timeout=240)


def test_a_partition_added_mid_stream_is_read_by_both_layers(platform: Platform) -> None:
    config, log = platform.config, platform.log
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_partitions([NewPartitions(log.topic, 3)])[log.topic].result(30)
    originals = events(seed=76, count=400)
    # half the events first in the new partition, half first in an old one
    log.send(originals[:200], partition=2)
    log.send(originals, partition=0)
    log.send(originals[200:], partition=2)
    assert_exact(platform, timeout=120)
    # the ingest job found it too: B passes the new partition's records
    newest = max(c.timestamp_ms for c in log.landed) / 1000
    wait_for_boundary(config, platform.layers, after=datetime.fromtimestamp(newest, timezone.utc), timeout=90)
    run_once(config, platform.layers)
    assert_exact(platform)


def test_copies_further_apart_than_the_horizon_are_distinct_events(platform: Platform) -> None:
    log = platform.log
    # sent by the first test, more than the horizon ago: each of these copies counts again
    long_ago = [c.event for c in log.landed[:150]]
    assert time.time() - max(c.timestamp_ms for c in log.landed[:150]) / 1000 > HORIZON_SECONDS
    log.send(long_ago, key="none")
    # and a copy within the horizon of one that was itself within the horizon: none counts
    fresh = events(seed=77, count=150)
    log.send(fresh, partition=0)
    time.sleep(HORIZON_SECONDS * 0.6)
    log.send(fresh, partition=1)
    time.sleep(HORIZON_SECONDS * 0.6)
    log.send(fresh, key="random")
    assert_exact(platform)
    run_once(platform.config, platform.layers)
    assert_exact(platform)
    assert platform.watch.checks > 30
