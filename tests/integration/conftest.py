"""Fixtures several integration modules share."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake import jobs
from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.ingest import IngestTarget, start
from lambdalake.tables import heartbeats_table

#: the CLI as a user runs it, from the venv running the tests
LAMBDALAKE = str(Path(sys.executable).parent / "lambdalake")


@pytest.fixture
def running_job(config: Config) -> Iterator[str]:
    """A PyFlink job of the test's own, so that the TaskManager runs Python workers."""
    suffix = uuid.uuid4().hex[:8]
    topic = f"test-job-{suffix}"
    admin = AdminClient({"bootstrap.servers": f"{config.host}:{config.kafka.port}"})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
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
