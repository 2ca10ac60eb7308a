"""The cluster profile on one host (lambdalake.cluster.toml): every engine in its cluster shape,
the warehouse and Flink's state on the object store, and exactness through a node's loss.

A pipeline of the test's own (a topic with 3 replicas; its speed job has a subtask on each
TaskManager) takes a stream of events with late ones, malformed records and copies re-sent with
a null key. While it streams, nodes are killed with SIGKILL (supervisord starts them again, as a
node's supervisor would): a worker host's Kafka broker, TaskManager and Trino worker at once; then
the JobManager; then the object store. After each: the ingest accounting is exact (accepted +
rejected = acknowledged, each Kafka position once) and serving equals the truth computed here from what Kafka acknowledged
(tests.integration.test_exactness.Log); serving is never above that truth at any instant it was
looked at (about once a second, throughout).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from lambdalake import checkpoints, jobs
from lambdalake.batch import Layers
from lambdalake.catalog import load_catalog, warehouse_uri
from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow, AirflowApi
from lambdalake.engines.flink import Flink
from lambdalake.engines.trino import Trino
from lambdalake.query import run_query
from lambdalake.supervisor import Supervisor
from tests.integration.conftest import deployed_layers
from tests.integration.test_exactness import Log, Watch
from tests.integration.test_restarts import Stream, assert_caught_up, status
from tests.integration.test_sockets import assert_every_socket_binds_the_host


@dataclass
class Pipeline:
    config: Config
    layers: Layers
    log: Log
    stream: Stream
    watch: Watch

    @property
    def jobs(self) -> tuple[str, str]:
        """The ingest and speed jobs' names (tests.integration.conftest.deployed_layers)."""
        return f"{self.layers.topic}-ingest", f"{self.layers.topic}-speed"


@pytest.fixture(scope="module")
def pipeline(config: Config) -> Iterator[Pipeline]:
    # the speed job at [speed] parallelism 2 (lambdalake.cluster.toml): a subtask on each TaskManager
    with deployed_layers(config, "cluster") as layers:
        log = Log(config, layers.topic, config.dedup.horizon_seconds)
        stream, watch = Stream(log, rate=60), Watch(config, layers, log)
        stream.start()
        stream.resume()
        watch.start()
        yield Pipeline(config, layers, log, stream, watch)
        stream.stopping.set()
        watch.stopping.set()


def kill(config: Config, program: str) -> int:
    """SIGKILL a supervised program's whole process group, as a lost node; supervisord starts it again."""
    pid = Supervisor(config).rpc().supervisor.getProcessInfo(program)["pid"]
    assert pid, f"{program} is not running"
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    return int(pid)


def back(config: Config, program: str, old_pid: int, timeout: float = 120) -> None:
    """Wait until supervisord runs the program again, as a new process."""
    deadline = time.monotonic() + timeout
    while True:
        info = Supervisor(config).rpc().supervisor.getProcessInfo(program)
        if info["statename"] == "RUNNING" and info["pid"] != old_pid:
            return
        assert time.monotonic() < deadline, f"{program} not running again: {info['statename']}"
        time.sleep(1)


def assert_exact(pipeline: Pipeline, timeout: float = 300) -> None:
    """Both jobs run; then, with the stream paused, every acknowledged record was ingested once and
    serving equals the truth; never above it meanwhile. The stream resumes afterwards."""
    log = pipeline.log
    assert_caught_up(pipeline.config, pipeline.layers, log, pipeline.stream, pipeline.jobs,
                     time.monotonic() + timeout, retry_query_errors=True)
    assert not pipeline.watch.wrong, pipeline.watch.wrong[:5]
    print(f"{log.acknowledged} records acknowledged; serving checked {pipeline.watch.checks} times")
    pipeline.stream.resume()


def test_every_engine_runs_in_its_cluster_shape(config: Config) -> None:
    code, report = status()
    assert code == 0, report
    programs = {name: state for entry in report if entry["kind"] == "engine" for name, state in entry["programs"].items()}
    for node in ("seaweedfs", "kafka-1", "kafka-2", "kafka-3", "flink-jobmanager", "flink-taskmanager-1",
                 "flink-taskmanager-2", "trino", "trino-worker-1", "redis", "airflow-scheduler", "airflow-api-server",
                 "airflow-worker-1", "airflow-worker-logs"):
        assert programs.get(node) == "RUNNING", (node, programs)
    overview = httpx.get(f"{Flink(config).rest_url}/overview", timeout=10).json()
    assert (overview["taskmanagers"], overview["slots-total"]) == (2, 2 * config.cluster.taskmanager_slots), overview
    _, nodes = run_query(config, "select coordinator, state from system.runtime.nodes")
    assert sorted(map(tuple, nodes)) == [(False, "active"), (True, "active")], nodes
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.brokers) == 3
    events = metadata.topics[config.kafka.events_topic]
    assert all(len(partition.replicas) == 3 for partition in events.partitions.values()), events.partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, config.kafka.events_topic)
    settings = admin.describe_configs([resource])[resource].result(30)
    assert settings["min.insync.replicas"].value == "2"
    assert Airflow(config).celery_probe() is None


def test_the_tables_and_the_jobs_state_live_in_the_object_store(pipeline: Pipeline) -> None:
    config = pipeline.config
    deadline = time.monotonic() + 120
    table = load_catalog(config).load_table(pipeline.layers.events_table)
    while not (files := [task.file.file_path for task in table.refresh().scan().plan_files()]):
        assert time.monotonic() < deadline, "no data file was committed"
        time.sleep(2)
    assert warehouse_uri(config).startswith("s3://")
    assert all(path.startswith(f"{warehouse_uri(config)}/") for path in files), files[:3]
    store = checkpoints.s3_filesystem(config)
    assert all(info.size > 0 for info in store.get_file_info([path.removeprefix("s3://") for path in files]))
    assert table.metadata_location.startswith("s3://")
    # nothing of the warehouse on the local disk: no data or metadata file under the data dir
    local = [p for p in config.data_dir.rglob("*") if p.suffix in (".parquet", ".avro") or p.name.endswith(".metadata.json")]
    assert not local, local[:5]
    job_id = jobs.live_jobs(config, pipeline.jobs[0])[0]
    while (checkpoint := checkpoints.latest_checkpoint(config, job_id)) is None:
        assert time.monotonic() < deadline, "no checkpoint in the object store"
        time.sleep(2)
    assert checkpoint.startswith(checkpoints.checkpoints_uri(config)) and checkpoint.startswith("s3://"), checkpoint
    assert not (config.data_dir / "flink" / "checkpoints").exists()
    assert_exact(pipeline)


def test_every_socket_of_every_node_binds_the_host(pipeline: Pipeline) -> None:
    """tests/integration/test_sockets.py's check, on every node, with the pipeline's jobs running."""
    assert_every_socket_binds_the_host(pipeline.config, pipeline.jobs[1])


def test_a_lost_worker_host_its_broker_taskmanager_and_trino_worker_at_once(pipeline: Pipeline) -> None:
    """A worker host is lost with what it runs: a Kafka broker, a TaskManager and the Trino worker,
    SIGKILLed at once. The TaskManager and the Trino worker come back at once (supervisord); the
    broker is kept down until the other two have acknowledged 100 more records. Then Trino
    schedules on its worker again, and the pipeline is exact."""
    config = pipeline.config
    supervisor = Supervisor(config)
    lost = {program: kill(config, program) for program in ("kafka-2", "flink-taskmanager-1", "trino-worker-1")}
    while supervisor.state("kafka-2") != "STOPPED":  # kept down a while: not restarted at once
        supervisor.stop("kafka-2")
        time.sleep(0.2)
    sent = pipeline.log.acknowledged
    deadline = time.monotonic() + 60
    # acks=all with min.insync.replicas=2: once the controller has moved the dead broker's
    # partitions (its session timeout, 9 s), writes go on with one broker down
    while pipeline.log.acknowledged < sent + 100:
        assert time.monotonic() < deadline, f"{pipeline.log.acknowledged - sent} acknowledged with a broker down"
        time.sleep(1)
    supervisor.start("kafka-2")
    for program, old in lost.items():
        back(config, program, old)
    deadline = time.monotonic() + 120
    while Trino(config).health() is not None:
        assert time.monotonic() < deadline, Trino(config).health()
        time.sleep(2)
    assert run_query(config, "select count(*) from system.runtime.nodes where coordinator = false")[1] == [[1]]
    assert_exact(pipeline)


def test_a_killed_jobmanager_brings_every_job_back_from_its_checkpoint_in_the_object_store(
        pipeline: Pipeline) -> None:
    config = pipeline.config
    before = {name: jobs.live_jobs(config, name)[0] for name in pipeline.jobs}
    for job_id in before.values():  # the keeper restores from these (lambdalake.checkpoints, on S3)
        deadline = time.monotonic() + 60
        while checkpoints.latest_checkpoint(config, job_id) is None:
            assert time.monotonic() < deadline, f"{job_id}: no checkpoint in the object store"
            time.sleep(1)
    old = kill(config, "flink-jobmanager")
    back(config, "flink-jobmanager", old)
    assert_exact(pipeline)
    for name, job_id in before.items():
        new_id = jobs.live_jobs(config, name)[0]
        restored = httpx.get(f"{Flink(config).rest_url}/jobs/{new_id}/checkpoints", timeout=10).json()["latest"]["restored"]
        assert restored["external_path"].startswith(f"{checkpoints.checkpoints_uri(config)}/{job_id}/chk-"), restored


def test_a_restarted_object_store(pipeline: Pipeline) -> None:
    config = pipeline.config
    old = kill(config, "seaweedfs")
    back(config, "seaweedfs", old)
    assert_exact(pipeline)


def test_a_batch_run_on_a_celery_worker_keeps_serving_exact(pipeline: Pipeline) -> None:
    config, layers = pipeline.config, pipeline.layers
    api = AirflowApi(Airflow(config))
    api.prepare_dag("batch_recompute")
    pipeline.stream.pause()
    run_id = api.trigger("batch_recompute", {"topic": layers.topic, "events_table": layers.events_table,
                                             "rejected_table": layers.rejected_table, "suffix": layers.suffix})
    assert api.wait("batch_recompute", run_id, timeout=600) == "success"
    instances = api.task_instances("batch_recompute", run_id)
    # run by the Celery worker, which names its host as the config does (where its log server listens)
    assert {(ti["hostname"], ti["queue"]) for ti in instances if ti["state"] == "success"} == {(config.host, "default")}
    log = api.task_log("batch_recompute", run_id, "boundary")
    assert log.strip(), "the task's log could not be read"
    pipeline.stream.resume()
    assert_exact(pipeline)
