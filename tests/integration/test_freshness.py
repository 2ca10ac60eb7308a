"""Freshness on the real engines: measured from the speed job's committed offsets, it agrees with
an independent probe (one event sent, the time until Trino counts it) and with when the test
itself sent the records the job has not counted, and `platform_health`'s check names a view past
its target until its job runs again. (test_ui sees the scheduled DAG itself fail and recover.)"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake import jobs, state
from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.freshness import measure, problems
from lambdalake.generator import EventGenerator
from lambdalake.producer import produce
from lambdalake.query import run_query
from lambdalake.speed import SpeedTarget, start
from lambdalake.views import View, lambda_views

#: its bounds are seconds: another lane's load would widen them
pytestmark = pytest.mark.serial

TARGET = "5 s"


@pytest.fixture
def target(config: Config) -> Iterator[SpeedTarget]:
    suffix = uuid.uuid4().hex[:8]
    target = SpeedTarget(f"test-fresh-{suffix}", f"test-fresh-{suffix}", f"test-fresh-{suffix}", f"__f{suffix}",
                         ("events_per_type",))
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(target.topic, num_partitions=2, replication_factor=config.kafka.replication_factor)])[target.topic].result(30)
    yield target
    jobs.cancel(config, target.job_name)
    admin.delete_topics([target.topic])[target.topic].result(30)
    catalog = load_catalog(config)
    if catalog.table_exists(f"speed.events_per_type{target.table_suffix}"):
        catalog.purge_table(f"speed.events_per_type{target.table_suffix}")


def events_per_type() -> View:
    return next(v for v in lambda_views() if v.name == "events_per_type")


def recorded(config: Config, name: str) -> state.ExpectedJob:
    return next(job for job in state.expected_jobs(config, all_jobs=True) if job.name == name)


def wait_for(condition, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_freshness_follows_the_speed_jobs_committed_offsets(config: Config, target: SpeedTarget) -> None:
    config = dataclasses.replace(config, serving=dataclasses.replace(
        config.serving, freshness_target=TARGET, freshness_grace="0 s", batch_overdue="100000 h"))
    view = events_per_type()
    start(config, target)
    wait_for(lambda: jobs.every_task_running(config, target.job_name), 180)
    produce(config, EventGenerator(seed=18), target.topic, count=200)

    def fresh() -> float | None:
        return measure(config, view, job=recorded(config, target.job_name)).freshness_seconds

    wait_for(lambda: fresh() == 0.0, 120)  # all counted and committed: fresh, and an idle stream stays so
    assert problems(config, [measure(config, view, job=recorded(config, target.job_name))]) == []

    # the probe: one event sent, then the time until Trino counts it, while the platform measures.
    # The job commits an event's offset at the first checkpoint after reading it; the event's row
    # waits for the watermark (a heartbeat interval plus the watermark delay), for its window to
    # close, and is committed to Iceberg by a checkpoint too, so the measured freshness may lag the
    # probe by up to all of those (README)
    table = f"speed.events_per_type{target.table_suffix}"
    allowed = (config.kafka.heartbeat_seconds + config.kafka.watermark_delay_seconds + config.speed.window_seconds
               + config.flink.checkpoint_seconds + 1.0)  # + a sampling step
    for seed in (181, 182):
        counted = run_query(config, f"select coalesce(sum(events), 0) from {table}")[1][0][0]
        sent = time.monotonic()
        produce(config, EventGenerator(seed=seed), target.topic, count=1)
        highest = 0.0
        while run_query(config, f"select coalesce(sum(events), 0) from {table}")[1][0][0] == counted:
            assert time.monotonic() - sent < 60, "Trino never counted the probe"
            highest = max(highest, fresh() or 0.0)
        probe = time.monotonic() - sent
        assert probe - allowed <= highest <= probe + 1.0, (seed, highest, probe, allowed)
        wait_for(lambda: fresh() == 0.0, 60)

    savepoint = jobs.stop(config, target.job_name)
    sent_at = datetime.now(timezone.utc)
    produce(config, EventGenerator(seed=19), target.topic, count=50)
    time.sleep(8)
    now = datetime.now(timezone.utc)
    measured = measure(config, view, now=now, job=recorded(config, target.job_name))
    waited = (now - sent_at).total_seconds()
    # the oldest event it has not counted is the first one sent after the stop
    assert measured.freshness_seconds is not None and waited - 2 <= measured.freshness_seconds <= waited, \
        (measured.freshness_seconds, waited)
    # the records it has not committed: those 50, and the heartbeats of the partitions meanwhile idle
    assert measured.lag_records is not None and measured.lag_records >= 50 and measured.on_target is False
    [problem] = problems(config, [measured])
    assert "serving.events_per_type" in problem and "target 5 s" in problem, problem

    start(config, target, savepoint=savepoint)
    wait_for(lambda: fresh() == 0.0, 180)
    assert problems(config, [measure(config, view, job=recorded(config, target.job_name))]) == []
