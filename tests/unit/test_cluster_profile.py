"""The cluster profile's shape, from lambdalake.cluster.toml: nodes, ports, state on the object store."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from lambdalake.checkpoints import checkpoints_uri, is_location, savepoints_uri
from lambdalake.config import PROJECT_ROOT, Config, PathsConfig, load_config
from lambdalake.engines import all_engines
from lambdalake.engines.airflow import Airflow, AirflowNode, airflow_settings
from lambdalake.engines.flink import Flink
from lambdalake.engines.kafka import Kafka
from lambdalake.engines.seaweedfs import SeaweedFS
from lambdalake.engines.trino import Trino, etc_files
from lambdalake.errors import ConfigError
from lambdalake.supervisor import Supervisor


@pytest.fixture()
def cluster(tmp_path: Path) -> Config:
    config = load_config(PROJECT_ROOT / "lambdalake.cluster.toml", environ={})
    return dataclasses.replace(config, paths=PathsConfig(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"))


def test_the_profile_file_selects_every_node_and_the_object_store(cluster: Config) -> None:
    assert cluster.clustered and cluster.kafka.replication_factor == 3 and cluster.kafka.min_insync_replicas == 2
    assert cluster.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292"
    assert [e.name for e in all_engines(cluster)] == ["postgres", "seaweedfs", "kafka", "flink", "trino", "airflow"]
    assert [e.name for e in all_engines(cluster) if e.storage] == ["postgres", "seaweedfs"]
    assert checkpoints_uri(cluster) == "s3://lambdalake/flink/checkpoints"
    assert savepoints_uri(cluster) == "s3://lambdalake/flink/savepoints"
    single = load_config(PROJECT_ROOT / "lambdalake.toml", environ={})
    assert not single.clustered and "seaweedfs" not in [e.name for e in all_engines(single)]
    assert single.kafka_bootstrap == "127.0.0.1:9092"


def test_an_unknown_profile_is_refused_with_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('profile = "big"\n')
    with pytest.raises(ConfigError, match="'big' .* not one of single, cluster"):
        load_config(path, environ={})
    cli = Path(sys.executable).parent / "lambdalake"
    proc = subprocess.run([str(cli), "--profile", "big", "config"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "error: --profile 'big' is not one of single, cluster" in proc.stderr
    proc = subprocess.run([str(cli), "--profile", "cluster", "config"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and '"profile": "cluster"' in proc.stdout


def test_three_brokers_each_a_controller_on_their_own_ports(cluster: Config) -> None:
    kafka = Kafka(cluster)
    brokers = kafka.brokers()
    assert [(b.program, b.port, b.controller_port) for b in brokers] == [
        ("kafka-1", 9092, 9093), ("kafka-2", 9192, 9193), ("kafka-3", 9292, 9293)]
    assert kafka.program_names == ("kafka-1", "kafka-2", "kafka-3", "kafka-heartbeat")
    # stopped together: one by one, the last outlives the controller quorum and is killed
    assert kafka.stop_order() == [("kafka-heartbeat",), ("kafka-1", "kafka-2", "kafka-3")]
    assert Airflow(cluster).stop_order()[:2] == [("airflow-worker-logs",), ("airflow-worker-1",)]
    properties = kafka.server_properties(brokers[1]).splitlines()
    assert "node.id=2" in properties
    assert "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293" in properties
    assert "listeners=PLAINTEXT://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193" in properties
    assert f"log.dirs={cluster.data_dir / 'kafka' / 'broker-2' / 'log'}" in properties
    assert "min.insync.replicas=2" in properties and "offsets.topic.replication.factor=3" in properties


def test_two_taskmanagers_with_their_state_on_the_object_store(cluster: Config) -> None:
    flink = Flink(cluster)
    assert flink.program_names == ("flink-jobmanager", "flink-taskmanager-1", "flink-taskmanager-2", "flink-keeper")
    assert flink.taskmanagers == ("flink-taskmanager-1", "flink-taskmanager-2")


def test_a_coordinator_that_leaves_the_work_to_its_worker(cluster: Config) -> None:
    trino = Trino(cluster)
    assert trino.program_names == ("trino", "trino-worker-1")
    coordinator, worker = trino.nodes()
    assert "node-scheduler.include-coordinator=false" in etc_files(cluster, coordinator.settings)["config.properties"]
    files = etc_files(cluster, worker.settings)
    assert "coordinator=false\nhttp-server.http.port=8180\ndiscovery.uri=http://127.0.0.1:8080\n" in files["config.properties"]
    assert "node.bind-ip=127.0.0.1" in files["node.properties"] and "node.id=lambdalake-worker-1" in files["node.properties"]
    catalog = files["catalog/lake.properties"]
    assert "fs.native-s3.enabled=true" in catalog and "s3.endpoint=http://127.0.0.1:8333" in catalog
    assert f"-Xmx{cluster.cluster.trino_heap}" in files["jvm.config"]


def test_celery_workers_apart_with_redis_and_their_log_server_on_the_host(cluster: Config) -> None:
    airflow = Airflow(cluster)
    assert airflow.program_names == ("redis", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                                     "airflow-triggerer", "airflow-worker-1", "airflow-worker-logs")
    programs = {p.name: p.command for p in airflow.programs()}
    assert tuple(programs) == airflow.program_names
    assert programs["redis"][1:5] == ["--bind", "127.0.0.1", "--port", "6379"]
    # the worker's own log server would bind every interface: skipped, and served on the host instead
    assert "--skip-serve-logs" in programs["airflow-worker-1"]
    logs = programs["airflow-worker-logs"]
    assert logs[logs.index("--host") + 1] == "127.0.0.1" and logs[logs.index("--port") + 1] == "8793"
    settings = airflow_settings(cluster, AirflowNode("CeleryExecutor", "127.0.0.1", "http://x", "d", "p", "l", "pw",
                                                     "f", "j", "a", celery_broker=airflow.celery_broker,
                                                     hostname_callable="lambdalake.engines.airflow.task_hostname"))
    assert settings["core"]["executor"] == "CeleryExecutor"
    assert settings["celery"]["broker_url"] == "redis://127.0.0.1:6379/0"
    assert settings["celery"]["result_backend"].startswith("db+postgresql://")
    assert settings["core"]["hostname_callable"] == "lambdalake.engines.airflow.task_hostname"


def test_the_object_store_binds_the_host_on_every_port(cluster: Config) -> None:
    command = SeaweedFS(cluster).programs()[0].command
    assert command[1] == "mini" and "-ip.bind=127.0.0.1" in command and "-ip=127.0.0.1" in command
    ports = sorted(int(flag.split("=")[1]) for flag in command if ".port" in flag and "=" in flag)
    # iceberg and lance gateways off; every other listener's port set, none of them a platform port
    assert ports == [0, 0, 8333, 8888, 9333, 9340, 18333, 18888, 19333, 19340, 23646, 33646]


def test_a_state_reference_is_a_job_id_or_a_location() -> None:
    assert not is_location("a" * 32)
    assert is_location("s3://lambdalake/flink/savepoints/savepoint-1") and is_location("file:/x/savepoint-1")


def test_up_checks_every_port_a_node_of_the_profile_listens_on(cluster: Config) -> None:
    """`up` refuses to start while another process holds one of these (Supervisor.strangers)."""
    ports = Supervisor(cluster).endpoint_ports()
    assert {port for port, key in ports.items() if key == "kafka.port"} == {9092, 9192, 9292}
    assert {port for port, key in ports.items() if key == "kafka.controller_port"} == {9093, 9193, 9293}
    assert [port for port, key in ports.items() if key == "cluster.trino_worker_port"] == [
        cluster.cluster.trino_worker_port + n for n in range(cluster.trino_workers)]
    assert ports[cluster.cluster.redis_port] == "cluster.redis_port"
    assert ports[cluster.cluster.worker_log_port] == "cluster.worker_log_port"
    seaweedfs = SeaweedFS(cluster).programs()[0].command
    for port, key in ports.items():
        if key.startswith("storage."):  # each one is a flag of `weed mini`
            assert any(flag.endswith(f".port={port}") or flag.endswith(f".port.grpc={port}") for flag in seaweedfs), port
    single = load_config(PROJECT_ROOT / "lambdalake.toml", environ={})
    assert sorted(Supervisor(single).endpoint_ports().values()) == [
        "airflow.port", "flink.rest_port", "flink.rpc_port", "kafka.controller_port", "kafka.port", "postgres.port", "trino.port"]
