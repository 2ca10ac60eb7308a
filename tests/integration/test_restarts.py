"""The pipeline survives its own restarts, exactly: a job cancelled behind the platform's back,
`down` then `up`, and a host restart (every process killed, then `up`). A JobManager killed alone
is tested on the cluster profile (tests/cluster), where the keeper restores from the object store.

Events stream with late events, malformed records and copies in other partitions (a retry with a
null key). Besides ingest and the shared speed job, a kappa view of the test's own has been
reprocessed, so its serving view reads a version table that its own version job keeps up to date.
After each recovery: the ingest accounting is exact (accepted + rejected = produced, each position
once) and every serving view, the reprocessed one included, equals the truth computed here from
what Kafka acknowledged (tests.integration.test_exactness.Log). `lambdalake status` names a missing job and
exits non-zero while it is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake import jobs, serving, versions
from lambdalake.batch import Layers, drop_layers, ensure_serving
from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.generator import EventGenerator, Faults, Record
from lambdalake.ingest import IngestTarget
from lambdalake.ingest import start as start_ingest
from lambdalake.kappa import reprocess, version_job
from lambdalake.query import run_query
from lambdalake.speed import SpeedTarget
from lambdalake.speed import start as start_speed
from lambdalake.supervisor import Supervisor
from tests.integration.test_batch import serving_totals
from tests.integration.test_exactness import Log, Watch
from tests.integration.test_kappa import KappaView, above
from tests.integration.test_kappa import serving as kappa_serving
from tests.integration.conftest import LAMBDALAKE

#: stops, restarts and crashes the whole platform
pytestmark = pytest.mark.serial

FAULTS = Faults(late_fraction=0.1, late_max=timedelta(hours=2), duplicate_fraction=0.1, malformed_fraction=0.05)


class Stream(threading.Thread):
    """Sends generator records at about `rate` a second while not paused."""

    def __init__(self, log: Log, rate: int = 80) -> None:
        super().__init__(daemon=True)
        self.log, self.rate = log, rate
        self.records: Iterator[Record] = EventGenerator(seed=91, faults=FAULTS).records()
        self.running = threading.Event()
        self.idle = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            if not self.running.is_set():
                self.idle.set()
                time.sleep(0.2)
                continue
            self.idle.clear()
            self.log.send_records(list(islice(self.records, self.rate // 4)))
            time.sleep(0.25)

    def pause(self) -> None:
        self.running.clear()
        self.idle.wait(60)

    def resume(self) -> None:
        self.idle.clear()
        self.running.set()


@dataclass
class Pipeline:
    config: Config
    ingest: IngestTarget
    speed: SpeedTarget
    layers: Layers
    #: reprocessed: counts events per minute and type, as events_per_type does, from its version table
    kappa: KappaView
    log: Log
    stream: Stream
    watch: Watch

    @property
    def job_names(self) -> tuple[str, str, str]:
        return self.ingest.job_name, self.speed.job_name, version_job(self.kappa.name, 1)


@pytest.fixture(scope="module")
def pipeline(config: Config) -> Iterator[Pipeline]:
    suffix = uuid.uuid4().hex[:8]
    topic = f"test-restart-{suffix}"
    layers = Layers(topic=topic, events_table=f"raw.test_restart_events_{suffix}",
                    rejected_table=f"raw.test_restart_rejected_{suffix}", suffix=f"__t{suffix}")
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=config.kafka.replication_factor)])[topic].result(30)
    ingest = IngestTarget(topic, f"{topic}-ingest", layers.events_table, layers.rejected_table, f"{topic}-ingest")
    speed = SpeedTarget(topic, f"{topic}-speed", f"{topic}-speed", layers.suffix)
    kappa = KappaView(f"test_restart_kappa_{suffix}", topic)
    kappa.define(1)
    with ThreadPoolExecutor(3) as pool:  # three `flink run` clients at once: each is ~20 s of CPU
        started = [pool.submit(start_ingest, config, ingest), pool.submit(start_speed, config, speed),
                   pool.submit(reprocess, config, kappa.name, 1, print, topic=topic, grace_seconds=0)]
        for future in started:
            future.result()
    ensure_serving(config, layers)
    log = Log(config, topic, config.dedup.horizon_seconds)
    stream, watch = Stream(log), Watch(config, layers, log)
    stream.start()
    stream.resume()
    watch.start()
    yield Pipeline(config, ingest, speed, layers, kappa, log, stream, watch)
    stream.stopping.set()
    watch.stopping.set()
    kappa.path.unlink(missing_ok=True)
    for job in (ingest.job_name, speed.job_name, version_job(kappa.name, 1)):
        jobs.cancel(config, job)
    serving.drop(config, f"serving.{kappa.name}")
    versions.forget(config, kappa.name)
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    drop_layers(config, layers)


def status() -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    proc = subprocess.run([LAMBDALAKE, "status", "--json"], capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout)


def healthy_soon(timeout: float = 60) -> list[dict]:  # type: ignore[type-arg]
    """The entries `status` still reports unhealthy after up to timeout seconds (none: exit 0)."""
    deadline = time.monotonic() + timeout
    while True:
        code, report = status()
        bad = [entry for entry in report if entry.get("healthy") is False]
        if code == 0 or time.monotonic() > deadline:
            return bad if code else []
        time.sleep(3)


def job_entry(report: list[dict], name: str) -> dict | None:  # type: ignore[type-arg]
    return next((r for r in report if r["kind"] == "job" and r["name"] == name), None)


def ingested_positions(config: Config, layers: Layers) -> list[int]:
    """[rows, distinct Kafka positions] in the master dataset and the rejected table together."""
    sql = f"""
        with positions as (
            select kafka_partition, kafka_offset from {layers.events_table}
            union all
            select kafka_partition, kafka_offset from {layers.rejected_table})
        select count(*), count(distinct (kafka_partition, kafka_offset)) from positions"""
    return list(run_query(config, sql)[1][0])


def assert_caught_up(config: Config, layers: Layers, log: Log, stream: Stream, job_names: tuple[str, ...],
                     deadline: float, *, retry_query_errors: bool = False) -> None:
    """Every named job runs; then, with the stream paused (it stays paused), the master dataset
    holds every acknowledged record once and serving equals the truth, by the deadline.
    retry_query_errors: a failed count is asked again (a Trino worker still joining)."""
    started = time.monotonic()
    while not running(config, *job_names):
        assert time.monotonic() < deadline, "the jobs were not brought back"
        time.sleep(2)
    print(f"every job running {time.monotonic() - started:.0f}s after the check began")
    stream.pause()
    while True:
        try:
            counts = ingested_positions(config, layers)
        except Exception:  # noqa: BLE001
            if not retry_query_errors:
                raise
            counts = None
        if counts == [log.acknowledged, log.acknowledged]:
            break
        if counts is not None:
            assert counts[0] == counts[1], f"a position was ingested twice: {counts}"
            assert counts[0] <= log.acknowledged, f"more ingested than produced: {counts} > {log.acknowledged}"
        assert time.monotonic() < deadline, f"ingested {counts}, produced {log.acknowledged}"
        time.sleep(2)
    while serving_totals(config, layers) != log.truth():
        assert time.monotonic() < deadline, "serving never equalled the truth after the recovery"
        time.sleep(2)


def assert_recovered(pipeline: Pipeline, timeout: float = 240) -> None:
    """Every job runs again; then, with the stream paused, the master dataset holds every record
    once and serving (the reprocessed view's too) equals the truth; never above it meanwhile. The
    stream resumes afterwards."""
    config, log = pipeline.config, pipeline.log
    deadline = time.monotonic() + timeout
    assert_caught_up(config, pipeline.layers, log, pipeline.stream, pipeline.job_names, deadline)
    # the reprocessed view counts what events_per_type counts, from its own job and version table
    expected = log.truth()["events_per_type"]
    while (answer := kappa_serving(config, pipeline.kappa)) != (1, expected):
        assert not above(answer[1], expected), above(answer[1], expected)[:5]
        assert time.monotonic() < deadline, (f"serving.{pipeline.kappa.name} never equalled the truth after the "
                                             f"recovery: {len(answer[1])} buckets, {len(expected)} expected")
        time.sleep(2)
    assert not pipeline.watch.wrong, pipeline.watch.wrong[:5]
    pipeline.stream.resume()


def running(config: Config, *names: str) -> bool:
    """Every named job is RUNNING on the cluster (False while the JobManager does not answer)."""
    try:
        states = jobs.job_states(config)
    except httpx.HTTPError:
        return False
    return all(states.get(name) == "RUNNING" for name in names)


def checkpointed_again(pipeline: Pipeline, timeout: float = 60) -> None:
    """Until every job has completed a checkpoint after this call: each has state, with records
    read since its last restore, to come back with."""
    rest = Flink(pipeline.config).rest_url
    job_ids = [jobs.live_jobs(pipeline.config, name)[0] for name in pipeline.job_names]

    def completed(job_id: str) -> int:
        return int(httpx.get(f"{rest}/jobs/{job_id}/checkpoints", timeout=10).json()["counts"]["completed"])

    before = {job_id: completed(job_id) for job_id in job_ids}
    deadline = time.monotonic() + timeout
    while waiting := [job_id for job_id in job_ids if completed(job_id) <= before[job_id]]:
        assert time.monotonic() < deadline, f"no checkpoint completed in {timeout:.0f}s: {waiting}"
        time.sleep(1)


def test_status_names_a_missing_job_and_the_keeper_brings_it_back(pipeline: Pipeline) -> None:
    config = pipeline.config
    checkpointed_again(pipeline)
    code, report = status()
    assert code == 0 and job_entry(report, pipeline.speed.job_name)["healthy"], report
    # cancelled behind the platform's back, as an operator in the Flink UI would
    job_id = jobs.live_jobs(config, pipeline.speed.job_name)[0]
    httpx.patch(f"{Flink(config).rest_url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
    deadline = time.monotonic() + 20
    while (entry := job_entry(status()[1], pipeline.speed.job_name))["healthy"]:
        assert time.monotonic() < deadline, "status never noticed the missing job"
    code, report = status()
    if not jobs.live_jobs(config, pipeline.speed.job_name):  # the keeper may be quicker than this check
        assert code == 1 and not job_entry(report, pipeline.speed.job_name)["healthy"], report
    assert entry["state"] in ("CANCELED", "CANCELLING", "MISSING"), entry
    assert_recovered(pipeline)
    assert jobs.live_jobs(config, pipeline.speed.job_name)[0] != job_id


def test_down_then_up_resumes_every_job_from_its_savepoint(pipeline: Pipeline) -> None:
    checkpointed_again(pipeline)
    pipeline.stream.pause()
    down = subprocess.run([LAMBDALAKE, "down"], capture_output=True, text=True, timeout=600)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"{pipeline.speed.job_name}: stopped with a savepoint" in down.stdout, down.stdout
    savepoints = dict(re.findall(r"^(\S+): stopped with a savepoint at (\S+)$", down.stdout, re.MULTILINE))
    up = subprocess.run([LAMBDALAKE, "up"], capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr
    pipeline.stream.resume()
    assert_recovered(pipeline)
    for name in pipeline.job_names:
        # each from the savepoint `down` took
        job_id = jobs.live_jobs(pipeline.config, name)[0]
        restored = httpx.get(f"{Flink(pipeline.config).rest_url}/jobs/{job_id}/checkpoints",
                             timeout=10).json()["latest"]["restored"]
        assert restored["external_path"] == savepoints[name], (restored, savepoints)
    # once each restored job has a checkpoint of its own, the keeper deletes the savepoints
    deadline = time.monotonic() + 60
    while left := [p for p in savepoints.values() if Path(p.removeprefix("file:")).exists()]:
        assert time.monotonic() < deadline, f"down's savepoints were never deleted: {left}"
        time.sleep(2)


def test_a_host_restart_resumes_every_job_from_its_latest_checkpoint(pipeline: Pipeline) -> None:
    checkpointed_again(pipeline)
    pipeline.stream.pause()
    assert Supervisor(pipeline.config).crash() > 0  # every process of the platform at once
    assert Supervisor(pipeline.config).leftovers() == [], "a process of the platform survived"
    up = subprocess.run([LAMBDALAKE, "up"], capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr
    pipeline.stream.resume()
    assert_recovered(pipeline)
    assert not (bad := healthy_soon()), bad
