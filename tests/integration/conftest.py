"""Fixtures several integration modules share."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake import jobs
from lambdalake.batch import Boundary, Layers, choose_boundary, drop_layers, ensure_serving
from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.ingest import IngestTarget, start
from lambdalake.speed import SpeedTarget
from lambdalake.speed import start as start_speed
from lambdalake.tables import heartbeats_table

#: the CLI as a user runs it, from the venv running the tests
LAMBDALAKE = str(Path(sys.executable).parent / "lambdalake")


def aggregated_counted_copies(config: Config, layers: Layers, tables: list[str], since: datetime) -> bool:
    """Whether Trino's queries created since `since` include a CREATE TABLE AS of one of `tables` (a
    view's batch table, or the slices table an incremental run adds from) from the run's counted
    copies (lambdalake.batch.count_copies), rather than from the master dataset."""
    from lambdalake.batch import counted_table
    from lambdalake.query import run_query

    counted = f"%{counted_table(layers).split('.')[1]}%"
    return any(run_query(config, "select query from system.runtime.queries where created >= ? and query like ? "
                                 "and query like ?", [since, f"create or replace table %{table.split('.')[1]}%",
                                                      counted])[1] for table in tables)


def wait_for_boundary(config: Config, layers: Layers, after: datetime | None = None, timeout: float = 180) -> Boundary:
    """The batch layer's B once there is one (the ingest job has committed some of every partition
    that holds records), and past `after` when given: a batch run started now then has work."""
    deadline = time.monotonic() + timeout
    while (chosen := choose_boundary(config, layers)) is None or (after is not None and chosen.moment <= after):
        assert time.monotonic() < deadline, (f"B was {chosen and chosen.moment} after {timeout}s, waiting for "
                                             f"{'a first B' if after is None else f'a B past {after}'}")
        time.sleep(2)
    return chosen


@pytest.fixture
def running_job(config: Config) -> Iterator[str]:
    """A PyFlink job of the test's own, so that the TaskManager runs Python workers."""
    suffix = uuid.uuid4().hex[:8]
    topic = f"test-job-{suffix}"
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=config.kafka.replication_factor)])[topic].result(30)
    target = IngestTarget(topic, f"{topic}-ingest", f"raw.test_job_{suffix}", f"raw.test_job_rejected_{suffix}",
                          f"{topic}-ingest")
    start(config, target)
    yield target.job_name
    jobs.cancel(config, target.job_name)
    admin.delete_topics([topic])[topic].result(30)
    catalog = load_catalog(config)
    for table in (target.events_table, target.rejected_table, heartbeats_table(target.events_table)):
        if catalog.table_exists(table):
            catalog.purge_table(table)


def start_both(config: Config, ingest: IngestTarget, speed: SpeedTarget, parallelism: int | None = None) -> None:
    """Start an ingest and a speed job at once: each `flink run` is a JVM of its own (~8 s), mostly
    waiting on one core; either one's error is raised."""
    with ThreadPoolExecutor(2) as pool:
        started = [pool.submit(start, config, ingest), pool.submit(start_speed, config, speed, parallelism=parallelism)]
        for future in started:
            future.result()


@contextmanager
def deployed_layers(config: Config, name: str, views: tuple[str, ...] = (), speed: bool = True) -> Iterator[Layers]:
    """Layers of a test's own (topic `test-<name>-<random>`, 3 partitions; its own master dataset,
    speed, batch and serving tables), fed by an ingest and a speed job of its own (the lambda views
    named, or all; no speed job and no serving views unless `speed`); everything removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    layers = Layers(topic=f"test-{name}-{suffix}", events_table=f"raw.test_{name}_events_{suffix}",
                    rejected_table=f"raw.test_{name}_rejected_{suffix}", suffix=f"__t{suffix}")
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(layers.topic, num_partitions=3, replication_factor=config.kafka.replication_factor)])[layers.topic].result(30)
    ingest = IngestTarget(layers.topic, f"{layers.topic}-ingest", layers.events_table, layers.rejected_table,
                          f"{layers.topic}-ingest")
    target = SpeedTarget(layers.topic, f"{layers.topic}-speed", f"{layers.topic}-speed", layers.suffix, views=views)
    if speed:
        start_both(config, ingest, target)
        ensure_serving(config, layers, list(views) or None)
    else:
        start(config, ingest)
    try:
        yield layers
    finally:
        for job in (ingest.job_name, target.job_name):
            jobs.cancel(config, job)
        admin.delete_topics([layers.topic])[layers.topic].result(30)
        drop_layers(config, layers)
