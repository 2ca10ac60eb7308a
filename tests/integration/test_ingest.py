"""The ingest job on the real engines: produced = accepted + rejected, exactly, across a restart."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.generator import MALFORMED_KINDS, EventGenerator, Faults, Summary
from lambdalake.ingest import IngestTarget, start
from lambdalake.jobs import cancel, live_jobs, stop
from lambdalake.keeper import reconcile
from lambdalake.producer import produce
from lambdalake.query import run_query

FAULTS = Faults(late_fraction=0.1, late_max=timedelta(hours=6), duplicate_fraction=0.05, malformed_fraction=0.25)


@pytest.fixture(scope="module")
def target(config: Config) -> Iterator[IngestTarget]:
    """A topic, tables and job of this test's own, so the platform's `events` are not touched."""
    suffix = uuid.uuid4().hex[:8]
    target = IngestTarget(f"test-events-{suffix}", f"test-ingest-{suffix}", f"raw.test_events_{suffix}",
                          f"raw.test_events_rejected_{suffix}", f"test-ingest-{suffix}")
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(target.topic, num_partitions=3, replication_factor=config.kafka.replication_factor)])[target.topic].result(30)
    yield target
    cancel(config, target.job_name)
    admin.delete_topics([target.topic])[target.topic].result(30)
    catalog = load_catalog(config)
    for table in (target.events_table, target.rejected_table, target.heartbeats_table):
        if catalog.table_exists(table):
            catalog.purge_table(table)


def counts(config: Config, target: IngestTarget) -> tuple[int, int]:
    _, rows = run_query(config, f"select (select count(*) from {target.events_table}), "
                                f"(select count(*) from {target.rejected_table})")
    return rows[0][0], rows[0][1]


def wait_until_ingested(config: Config, target: IngestTarget, produced: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while sum(seen := counts(config, target)) < produced:
        assert time.monotonic() < deadline, f"after {timeout}s only {seen} of {produced} records are in the tables"
        time.sleep(2)
    time.sleep(6)  # one more checkpoint: anything written twice would show now


def merged(*summaries: Summary) -> Summary:
    total = Summary(summaries[0].topic)
    for summary in summaries:
        total.by_kind.update(summary.by_kind)
    return total


def assert_exact(config: Config, target: IngestTarget, sent: Summary) -> None:
    accepted, rejected = counts(config, target)
    assert (accepted, rejected) == (sent.expected_accepted, sum(sent.expected_rejected.values()))
    assert accepted + rejected == sent.sent

    _, rows = run_query(config, f"select reason_code, count(*) from {target.rejected_table} group by 1")
    assert dict((code, n) for code, n in rows) == sent.expected_rejected

    _, rows = run_query(config, f"""
        with positions as (
            select kafka_partition, kafka_offset from {target.events_table}
            union all
            select kafka_partition, kafka_offset from {target.rejected_table}
        )
        select count(*), count(distinct (kafka_partition, kafka_offset)) from positions""")
    assert rows == [[sent.sent, sent.sent]], "a (partition, offset) was written twice"


@pytest.fixture(scope="module")
def first_batch(config: Config, target: IngestTarget) -> Summary:
    sent = produce(config, EventGenerator(seed=7, faults=FAULTS), target.topic, count=1500)
    assert all(sent.by_kind[kind] for kind in MALFORMED_KINDS), "every bad kind should be sent"
    assert sent.by_kind["late"] and sent.by_kind["duplicate"]
    start(config, target)
    wait_until_ingested(config, target, sent.sent)
    return sent


def test_produced_equals_accepted_plus_rejected_with_the_right_reasons(
        config: Config, target: IngestTarget, first_batch: Summary) -> None:
    # the job runs with object reuse (lambdalake.ingest.JOB_SETTINGS): rows passed on, not copied
    job_config = httpx.get(f"{Flink(config).rest_url}/jobs/{live_jobs(config, target.job_name)[0]}/config",
                           timeout=10).json()
    assert job_config["execution-config"]["object-reuse-mode"] is True, job_config
    assert_exact(config, target, first_batch)


def test_every_rejected_row_keeps_its_reason_payload_and_position(
        config: Config, target: IngestTarget, first_batch: Summary) -> None:
    _, rows = run_query(config, f"""
        select count(*) from {target.rejected_table}
        where reason = '' or reason is null or not starts_with(reason, reason_code || ': ')
           or kafka_offset < 0 or ingest_time is null or payload_bytes < length(payload)""")
    assert rows == [[0]]
    _, rows = run_query(config, f"select payload_bytes, length(payload) from {target.rejected_table} "
                                "where reason_code = 'oversized'")
    assert rows and all(size > 1024 * 1024 and kept == 64 * 1024 for size, kept in rows)


def test_duplicates_and_late_events_stay_in_the_master_dataset(
        config: Config, target: IngestTarget, first_batch: Summary) -> None:
    _, rows = run_query(config, f"select count(*) - count(distinct event_id), "
                                f"count_if(event_time < ingest_time - interval '1' minute) from {target.events_table}")
    duplicates, late = rows[0]
    assert duplicates == first_batch.by_kind["duplicate"]
    assert late >= first_batch.by_kind["late"] * 0.9  # a late event may be at most a few seconds behind


def test_trino_and_pyiceberg_read_the_same_rows(config: Config, target: IngestTarget, first_batch: Summary) -> None:
    _, rows = run_query(config, f"select kafka_partition, kafka_offset, event_id from {target.events_table}")
    from_trino = sorted(tuple(row) for row in rows)
    table = load_catalog(config).load_table(target.events_table)
    arrow = table.scan(selected_fields=("kafka_partition", "kafka_offset", "event_id")).to_arrow()
    from_pyiceberg = sorted(zip(*(arrow[c].to_pylist() for c in ("kafka_partition", "kafka_offset", "event_id"))))
    assert from_trino == from_pyiceberg
    assert len(from_trino) == first_batch.expected_accepted


def test_still_exact_after_a_stop_with_savepoint_and_restart(
        config: Config, target: IngestTarget, first_batch: Summary) -> None:
    # the keeper runs meanwhile, as it does for ever on a live platform: it must not bring back a job
    # the platform is stopping (it did, between the job's end and the record of its savepoint)
    stopping = threading.Event()
    restored: list[str] = []

    def keeper() -> None:
        while not stopping.is_set():
            restored.extend(name for name in reconcile(config, say=lambda _: None) if name == target.job_name)

    racing = threading.Thread(target=keeper)
    racing.start()
    try:
        savepoint = stop(config, target.job_name)
    finally:
        stopping.set()
        racing.join()
    assert restored == [], "the keeper brought back a job that was being stopped"
    assert live_jobs(config, target.job_name) == []
    second_batch = produce(config, EventGenerator(seed=8, faults=FAULTS), target.topic, count=1000)
    start(config, target, savepoint=savepoint)
    # stopped again at once, while its tasks deploy: Flink takes no savepoint until they all run
    # ("Not all required tasks are currently running"), so `stop` waits for them
    start(config, target, savepoint=stop(config, target.job_name))
    both = merged(first_batch, second_batch)
    wait_until_ingested(config, target, both.sent)
    assert_exact(config, target, both)


def test_a_job_started_without_its_savepoint_resumes_where_the_tables_end(
        config: Config, target: IngestTarget, first_batch: Summary) -> None:
    # what an upgrade that changes the job's plan does (README): the new job cannot restore the
    # old one's savepoint and starts without state. Records stream while the old job stops; it
    # stored them, but had not always committed their offsets to Kafka (started at the group's
    # offsets, the new job stored 1,051 of 8,400 such records twice)
    before = counts(config, target)
    sent: list[Summary] = []
    streaming = threading.Thread(target=lambda: sent.append(
        produce(config, EventGenerator(seed=9, faults=FAULTS), target.topic, rate=300, duration=12)))
    streaming.start()
    time.sleep(6)
    stop(config, target.job_name)
    streaming.join()
    start(config, target)
    wait_until_ingested(config, target, sum(before) + sent[0].sent)
    assert counts(config, target) == (before[0] + sent[0].expected_accepted,
                                      before[1] + sum(sent[0].expected_rejected.values()))
    _, rows = run_query(config, f"""
        with positions as (
            select kafka_partition, kafka_offset from {target.events_table}
            union all
            select kafka_partition, kafka_offset from {target.rejected_table}
        )
        select count(*) - count(distinct (kafka_partition, kafka_offset)) from positions""")
    assert rows == [[0]], f"{rows[0][0]} records were stored twice"
