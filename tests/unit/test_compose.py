"""docker/'s compose files: current with docker/cluster.toml, the topology issue 19 asks for, every
published socket on the configured host, images pinned where the engines are, and valid to
docker-compose itself (Debian's v1, offline: nothing is pulled or built)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambdalake import compose
from lambdalake.config import load_config
from lambdalake.engines.kafka import Kafka
from lambdalake.engines.trino import Trino

SECRETS = {name: f"test-{name.lower()}" for name in compose.SECRETS}


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return compose.render(compose.cluster_config())


@pytest.fixture(scope="module")
def services(files: dict[str, str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in compose.LAYERS:
        document = yaml.safe_load(files[f"compose.{layer}.yml"])
        overlap = merged.keys() & document["services"].keys()
        assert not overlap, f"services defined in two layers: {overlap}"
        merged.update(document["services"])
    return merged


def test_the_committed_files_are_what_cluster_toml_renders(files: dict[str, str]) -> None:
    stale = compose.stale(files)
    assert not stale, f"docker/ is stale ({stale}): run `make compose` and commit it"


def test_the_topology(services: dict[str, Any], files: dict[str, str]) -> None:
    config = compose.cluster_config()
    brokers = sorted(name for name in services if name.startswith("kafka-") and name[6:].isdigit())
    assert brokers == ["kafka-1", "kafka-2", "kafka-3"]
    for name in brokers:
        environment = services[name]["environment"]
        assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert environment["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert environment["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert len(environment["CLUSTER_ID"]) == 22 and not environment["CLUSTER_ID"].startswith("-")
    topic = services["kafka-topics"]["entrypoint"][-1]
    assert "--replication-factor 3" in topic and "--config min.insync.replicas=2" in topic
    assert "--config retention.ms=-1" in topic and f"--partitions {config.kafka.events_partitions}" in topic
    assert sorted(name for name in services if name.startswith("taskmanager-")) == ["taskmanager-1", "taskmanager-2"]
    for name in ("jobmanager", "taskmanager-1"):
        properties = services[name]["environment"]["FLINK_PROPERTIES"]
        # checkpoints and savepoints on the object store, through the S3 plugin the image ships
        assert "execution.checkpointing.dir: s3://lambdalake/flink/checkpoints" in properties
        assert "s3.endpoint: http://seaweedfs:8333" in properties
        assert services[name]["environment"]["ENABLE_BUILT_IN_PLUGINS"].startswith("flink-s3-fs-presto-")
    assert "coordinator=true\nnode-scheduler.include-coordinator=false" in files["trino/trino/config.properties"]
    assert "coordinator=false" in files["trino/trino-worker-1/config.properties"]
    for node in ("trino", "trino-worker-1"):
        catalog = files[f"trino/{node}/catalog/lake.properties"]
        assert "fs.native-s3.enabled=true" in catalog and "default-warehouse-dir=s3://lambdalake/warehouse" in catalog
        assert "connection-url=jdbc:postgresql://postgres:5433/iceberg_catalog" in catalog
    airflow = services["airflow-scheduler"]["environment"]
    assert airflow["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert airflow["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
            "airflow-worker-1", "redis", "postgres", "seaweedfs"} <= services.keys()
    assert services["airflow-worker-1"]["command"] == ["celery", "worker"]


def test_every_published_port_binds_the_configured_host(services: dict[str, Any]) -> None:
    host = compose.cluster_config().host
    published = [(name, port) for name, service in services.items() for port in service.get("ports", [])]
    assert published, "nothing is published"
    for name, port in published:
        assert port.startswith(f"{host}:") and port.count(":") == 2, f"{name} publishes {port!r}, not on {host}"


def test_images_are_pinned_and_follow_the_engines_pins(services: dict[str, Any]) -> None:
    pins = compose.pins()
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image!r} is not pinned"
    assert services["kafka-1"]["image"] == f"apache/kafka:{pins['kafka']}"
    assert services["trino"]["image"] == f"trinodb/trino:{pins['trino']}"
    assert services["jobmanager"]["build"]["args"]["FLINK_VERSION"] == pins["flink"]
    assert services["airflow-init"]["build"]["args"]["AIRFLOW_VERSION"] == pins["airflow"]
    # the builds start from the official images
    assert "FROM flink:${FLINK_VERSION}-scala_2.12-java17" in (compose.DOCKER_DIR / "flink" / "Dockerfile").read_text()
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python3.11" in (compose.DOCKER_DIR / "airflow" / "Dockerfile").read_text()


def test_dependencies_wait_for_health(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on {dependency}, which no layer defines"
            condition = rule["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), f"{name} -> {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health, which has no check"
            else:
                assert services[dependency].get("restart") == "on-failure", f"{dependency} is a one-shot step"


def test_the_embedded_engines_keep_their_settings(tmp_path: Path) -> None:
    """`up` writes its single nodes through the same functions; on one machine they stay as before."""
    config = load_config(environ={"LAMBDALAKE__PATHS__DATA_DIR": str(tmp_path)})
    kafka = Kafka(config)
    properties = kafka.server_properties(kafka.brokers()[0])
    assert "node.id=1\n" in properties and f"controller.quorum.voters=1@{config.host}:{config.kafka.controller_port}" in properties
    assert "offsets.topic.replication.factor=1\n" in properties and "min.insync.replicas=1\n" in properties
    Trino(config).prepare()
    catalog = (tmp_path / "trino" / "etc" / "catalog" / "lake.properties").read_text()
    assert "fs.native-local.enabled=true\nlocal.location=/\n" in catalog
    assert f"default-warehouse-dir=file://{config.warehouse_dir}" in catalog
    node = (tmp_path / "trino" / "etc" / "node.properties").read_text()
    assert f"node.bind-ip={config.host}\nnode.internal-address={config.host}\n" in node


def _docker_compose(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed: .ci/run installs Debian's")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    clean = {key: value for key, value in os.environ.items() if key not in compose.SECRETS}
    return subprocess.run(["docker-compose", *args], cwd=compose.DOCKER_DIR, env={**clean, **environment},
                          capture_output=True, text=True, timeout=60)


def test_docker_compose_accepts_the_files() -> None:
    result = _docker_compose("config", "-q", environment=SECRETS)
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(_docker_compose("config", environment=SECRETS).stdout)
    assert merged["services"]["airflow-scheduler"]["environment"]["AIRFLOW__CORE__FERNET_KEY"] == SECRETS["AIRFLOW_FERNET_KEY"]
    # `$$` in a command reaches the shell as one `$`
    assert "$LAMBDALAKE_ADMIN_PASSWORD" in merged["services"]["airflow-init"]["entrypoint"][-1]


def test_docker_compose_names_a_missing_secret() -> None:
    result = _docker_compose("config", "-q", environment={k: v for k, v in SECRETS.items() if k != "AIRFLOW_JWT_SECRET"})
    assert result.returncode != 0
    assert "AIRFLOW_JWT_SECRET" in result.stderr or "see docker/README.md" in result.stderr, result.stderr
