"""The multi-host deployment: docker/'s compose files, rendered from the same config as `up`.

`lambdalake compose` reads docker/cluster.toml (a lambdalake.toml whose [addresses] are the compose
services' names and whose warehouse is on the object store) and writes one compose file per layer
into docker/, plus each Trino node's etc/ and the object store's credentials. Every engine's
settings come from the functions `up` uses for the embedded engines (lambdalake.engines), so the
two deployments cannot drift; images follow the pins in engines/pom.xml and pyproject.toml.
`make compose` writes the files again; a unit test fails when one is stale.

No image can be pulled or built on the machine the tests run on, so the files are checked with
`docker-compose config` (Debian's v1, which lacks `include:`: the layers are separate -f files, listed
in docker/.env as COMPOSE_FILE), not run.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urlparse
from pathlib import Path
from typing import Any

import yaml

from lambdalake.catalog import s3_properties, warehouse_uri
from lambdalake.config import PROJECT_ROOT, Config, load_config
from lambdalake.engines.airflow import AirflowNode, airflow_settings
from lambdalake.engines.flink import FlinkNode, flink_settings
from lambdalake.engines.kafka import broker_properties, topic_config
from lambdalake.engines.trino import TrinoNode, etc_files
from lambdalake.install import flink_venv

DOCKER_DIR = PROJECT_ROOT / "docker"
CLUSTER_CONFIG = DOCKER_DIR / "cluster.toml"
#: one file per layer, in the order they start; COMPOSE_FILE in docker/.env lists them
LAYERS = ("storage", "log", "speed", "serving", "batch")
HEADER = ("# Made from docker/cluster.toml by `lambdalake compose` (make compose); do not edit.\n"
          "# Run from docker/ with all layers: docker-compose up -d (COMPOSE_FILE in .env lists them).\n")
#: where the project is copied in the images built from docker/*/Dockerfile
APP_DIR = "/opt/lambdalake"
#: the secrets the compose files take from the environment (or docker/.env), never from a file here
EXTERNAL_KAFKA_PORT = 19092
#: the Kafka cluster's id, as its storage tool makes them (16 bytes, base64url), fixed so that the
#: rendered files do not change from run to run
CLUSTER_ID = base64.urlsafe_b64encode(uuid.uuid5(uuid.NAMESPACE_DNS, "kafka.lambdalake").bytes).decode().rstrip("=")
SECRETS = ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD")


def pins() -> dict[str, str]:
    """The engines' versions, read from where they are pinned (engines/pom.xml, pyproject.toml)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = ET.parse(PROJECT_ROOT / "engines" / "pom.xml").getroot().find("m:properties", ns)
    assert properties is not None, "engines/pom.xml has no <properties>"
    maven = {child.tag.split("}", 1)[1]: (child.text or "") for child in properties}
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]

    def pinned(package: str) -> str:
        for requirement in requirements:
            match = re.fullmatch(rf"{re.escape(package)}(\[[^]]*\])?==([\w.]+)", requirement.strip())
            if match:
                return match.group(2)
        raise ValueError(f"pyproject.toml pins no {package}==VERSION; pin it there, the images follow it")

    return {"kafka": maven["kafka.version"], "trino": maven["trino.version"], "iceberg": maven["iceberg.version"],
            "flink": pinned("apache-flink"), "airflow": pinned("apache-airflow")}


def _published(config: Config, port: int, inside: int | None = None) -> str:
    """A port published on the configured host only, as every socket of the platform binds."""
    return f"{config.host}:{port}:{inside or port}"


def _healthy(*services: str) -> dict[str, dict[str, str]]:
    return {service: {"condition": "service_healthy"} for service in services}


def _tcp_check(port: int) -> dict[str, Any]:
    """A health check for images without curl: the port accepts a connection (bash's /dev/tcp)."""
    return {"test": ["CMD-SHELL", f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'"],
            "interval": "5s", "timeout": "3s", "retries": 30}


def _kafka_env(properties: dict[str, str]) -> dict[str, str]:
    """Broker properties as the apache/kafka image's variables: . -> _, _ -> __, - -> ___."""
    return {"KAFKA_" + key.replace("-", "___").replace("_", "__").replace(".", "_").upper(): value
            for key, value in properties.items()}


def storage(config: Config) -> dict[str, Any]:
    pg, cluster = config.postgres, config.cluster
    # the gateway listens where [storage] s3_endpoint says the clients reach it
    s3_port = urlparse(config.storage.s3_endpoint).port or 8333
    bucket = warehouse_uri(config).removeprefix("s3://").split("/", 1)[0]
    return {
        "postgres": {
            "image": cluster.postgres_image,
            "command": ["postgres", "-p", str(pg.port)],
            "environment": {"POSTGRES_USER": pg.user, "POSTGRES_PASSWORD": pg.password,
                            "POSTGRES_DB": pg.catalog_database},
            "volumes": ["postgres-data:/var/lib/postgresql/data",
                        "./postgres/init.sql:/docker-entrypoint-initdb.d/init.sql:ro"],
            "ports": [_published(config, pg.port)],
            "healthcheck": {"test": ["CMD", "pg_isready", "-p", str(pg.port), "-U", pg.user, "-d", pg.catalog_database],
                            "interval": "5s", "timeout": "3s", "retries": 30},
        },
        "seaweedfs": {
            "image": cluster.seaweedfs_image,
            # master, volume server, filer and S3 gateway in one process; on real hosts, split them
            "command": ["server", "-dir=/data", "-ip=seaweedfs", "-ip.bind=0.0.0.0", "-s3",
                        f"-s3.port={s3_port}", "-s3.config=/etc/seaweedfs/s3.json"],
            "volumes": ["seaweedfs-data:/data", "./seaweedfs/s3.json:/etc/seaweedfs/s3.json:ro"],
            "ports": [_published(config, s3_port)],
            "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{s3_port}/healthz"],
                            "interval": "5s", "timeout": "3s", "retries": 30},
        },
        "seaweedfs-bucket": {
            "image": cluster.seaweedfs_image,
            "entrypoint": ["/bin/sh", "-c", f"echo 's3.bucket.create -name {bucket}' | weed shell -master=seaweedfs:9333"],
            "depends_on": _healthy("seaweedfs"),
            "restart": "on-failure",
        },
    }


def log(config: Config, versions: dict[str, str]) -> dict[str, Any]:
    kafka, brokers = config.kafka, range(1, config.cluster.kafka_brokers + 1)
    voters = ",".join(f"{n}@kafka-{n}:{kafka.controller_port}" for n in brokers)
    services: dict[str, Any] = {}
    for n in brokers:
        # clients inside the network use PLAINTEXT; those on the docker host, EXTERNAL: each broker's
        # port there is kafka.port + 100 (n - 1), i.e. 9092, 9192, 9292
        external = kafka.port + 100 * (n - 1)
        properties = broker_properties(
            config, node_id=n, voters=voters,
            listeners=f"PLAINTEXT://0.0.0.0:{kafka.port},CONTROLLER://0.0.0.0:{kafka.controller_port},"
                      f"EXTERNAL://0.0.0.0:{EXTERNAL_KAFKA_PORT}",
            advertised=f"PLAINTEXT://kafka-{n}:{kafka.port},EXTERNAL://{config.host}:{external}",
            protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
            log_dir="/var/lib/kafka/data")
        services[f"kafka-{n}"] = {
            "image": f"apache/kafka:{versions['kafka']}",
            "hostname": f"kafka-{n}",
            "environment": {"CLUSTER_ID": CLUSTER_ID, **_kafka_env(properties),
                            "KAFKA_HEAP_OPTS": f"-Xms{config.cluster.kafka_heap} -Xmx{config.cluster.kafka_heap}"},
            "volumes": [f"kafka-{n}-data:/var/lib/kafka/data"],
            "ports": [_published(config, external, EXTERNAL_KAFKA_PORT)],
            "healthcheck": {"test": ["CMD-SHELL", f"/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "
                                                  f"localhost:{kafka.port} > /dev/null"],
                            "interval": "10s", "timeout": "10s", "retries": 30},
        }
    settings = " ".join(f"--config {key}={value}" for key, value in topic_config(config).items())
    services["kafka-topics"] = {
        "image": f"apache/kafka:{versions['kafka']}",
        "entrypoint": ["/bin/bash", "-c",
                       f"/opt/kafka/bin/kafka-topics.sh --bootstrap-server {config.kafka_bootstrap} --create "
                       f"--if-not-exists --topic {kafka.events_topic} --partitions {kafka.events_partitions} "
                       f"--replication-factor {kafka.replication_factor} {settings}"],
        "depends_on": _healthy(*(f"kafka-{n}" for n in brokers)),
        "restart": "on-failure",
    }
    return services


def _flink_properties(config: Config, host: str) -> str:
    cluster = config.cluster
    base = warehouse_uri(config).rsplit("/", 1)[0] if warehouse_uri(config).startswith("s3://") else "file:///opt/flink/state"
    settings = flink_settings(config, FlinkNode(
        rpc_address="jobmanager", bind_host="0.0.0.0", advertised_host=host, checkpoints=f"{base}/flink/checkpoints",
        savepoints=f"{base}/flink/savepoints", work_dir="/opt/flink/work", python=str(flink_venv(config) / "bin" / "python"),
        jobmanager_memory=cluster.jobmanager_memory, taskmanager_memory=cluster.taskmanager_memory,
        task_slots=cluster.taskmanager_slots))
    return "".join(f"{key}: {json.dumps(value) if isinstance(value, bool) else value}\n" for key, value in settings.items())


def speed(config: Config, versions: dict[str, str]) -> dict[str, Any]:
    image = {"image": f"lambdalake/flink:{versions['flink']}",
             "build": {"context": "..", "dockerfile": "docker/flink/Dockerfile",
                       "args": {"FLINK_VERSION": versions["flink"]}}}
    # the built-in S3 plugin is the file system of checkpoints and savepoints on the object store
    plugin = {"ENABLE_BUILT_IN_PLUGINS": f"flink-s3-fs-presto-{versions['flink']}.jar",
              "LAMBDALAKE_CONFIG": f"{APP_DIR}/docker/cluster.toml"}
    services: dict[str, Any] = {
        "jobmanager": {
            **image,
            "hostname": "jobmanager",
            "command": "jobmanager",
            "environment": {**plugin, "FLINK_PROPERTIES": _flink_properties(config, "jobmanager")},
            "ports": [_published(config, config.flink.rest_port)],
            "healthcheck": _tcp_check(config.flink.rest_port),
            "depends_on": _healthy("postgres", "seaweedfs"),
        },
    }
    for n in range(1, config.cluster.flink_taskmanagers + 1):
        services[f"taskmanager-{n}"] = {
            "image": image["image"],
            "hostname": f"taskmanager-{n}",
            "command": "taskmanager",
            "environment": {**plugin, "FLINK_PROPERTIES": _flink_properties(config, f"taskmanager-{n}")},
            "depends_on": _healthy("jobmanager"),
        }
    # submits the ingest and speed jobs once the log and the cluster are up (what `lambdalake demo` starts)
    services["flink-jobs"] = {
        "image": image["image"],
        "environment": {"LAMBDALAKE_CONFIG": f"{APP_DIR}/docker/cluster.toml"},
        "entrypoint": ["/bin/bash", "-c", "lambdalake ingest start && lambdalake speed start"],
        "depends_on": {**_healthy("jobmanager", "trino"),
                       "kafka-topics": {"condition": "service_completed_successfully"},
                       "seaweedfs-bucket": {"condition": "service_completed_successfully"}},
        "restart": "on-failure",
    }
    # brings back every job the platform expects to run, from its last checkpoint (lambdalake.keeper)
    services["flink-keeper"] = {
        "image": image["image"],
        "environment": {"LAMBDALAKE_CONFIG": f"{APP_DIR}/docker/cluster.toml"},
        "entrypoint": ["/opt/lambdalake-venv/bin/python", "-m", "lambdalake.keeper"],
        "depends_on": {"flink-jobs": {"condition": "service_completed_successfully"}},
        "restart": "unless-stopped",
    }
    return services


def trino_nodes(config: Config) -> dict[str, TrinoNode]:
    """The coordinator (which leaves the work to the workers) and each worker, by service name."""
    cluster = config.cluster

    def node(node_id: str, coordinator: bool) -> TrinoNode:
        return TrinoNode(node_id, coordinator=coordinator, bind_ip="0.0.0.0", data_dir="/data/trino",
                         discovery_uri=f"http://trino:{config.trino.port}", heap=cluster.trino_heap,
                         query_max_memory=cluster.trino_query_max_memory,
                         include_coordinator=cluster.trino_workers == 0)

    return {"trino": node("trino-coordinator", True),
            **{f"trino-worker-{n}": node(f"trino-worker-{n}", False) for n in range(1, cluster.trino_workers + 1)}}


def serving(config: Config, versions: dict[str, str]) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for name in trino_nodes(config):
        services[name] = {
            "image": f"trinodb/trino:{versions['trino']}",
            "hostname": name,
            "volumes": [f"./trino/{name}:/etc/trino:ro"],
            "healthcheck": {"test": ["CMD", "/usr/lib/trino/bin/health-check"], "interval": "10s", "timeout": "5s",
                            "retries": 30},
            "depends_on": _healthy("postgres", "seaweedfs") if name == "trino" else _healthy("trino"),
        }
    services["trino"]["ports"] = [_published(config, config.trino.port)]
    return services


def _airflow_environment(config: Config) -> dict[str, str]:
    base_url = f"http://airflow-api-server:{config.airflow.port}"
    sections = airflow_settings(config, AirflowNode(
        executor="CeleryExecutor", bind_host="0.0.0.0", base_url=base_url, dags_folder=f"{APP_DIR}/dags",
        plugins_folder=f"{APP_DIR}/airflow_plugins", log_folder="/opt/airflow/logs",
        passwords_file="/opt/airflow/passwords.json", fernet_key="${AIRFLOW_FERNET_KEY:?see docker/README.md}",
        jwt_secret="${AIRFLOW_JWT_SECRET:?see docker/README.md}",
        api_secret_key="${AIRFLOW_API_SECRET_KEY:?see docker/README.md}", celery_broker="redis://redis:6379/0"))
    # a Celery worker serves its tasks' logs to the api-server: in a container, on every interface of it
    environment = {f"AIRFLOW__{section.upper()}__{key.upper()}": str(value)
                   for section, options in sections.items() for key, value in options.items()}
    return {**environment, "LAMBDALAKE_CONFIG": f"{APP_DIR}/docker/cluster.toml",
            "LAMBDALAKE_ADMIN_PASSWORD": "${AIRFLOW_ADMIN_PASSWORD:?see docker/README.md}"}


def batch(config: Config, versions: dict[str, str]) -> dict[str, Any]:
    image = f"lambdalake/airflow:{versions['airflow']}"
    common = {"image": image, "environment": _airflow_environment(config)}
    ready = {**_healthy("postgres", "redis"), "airflow-init": {"condition": "service_completed_successfully"}}
    user = config.airflow.admin_user
    services: dict[str, Any] = {
        "redis": {
            "image": config.cluster.redis_image,
            "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "5s", "timeout": "3s", "retries": 30},
        },
        "airflow-init": {
            **common,
            "build": {"context": "..", "dockerfile": "docker/airflow/Dockerfile",
                      "args": {"AIRFLOW_VERSION": versions["airflow"]}},
            # the simple auth manager's passwords file, from the secret, then the metadata schema
            "entrypoint": ["/bin/bash", "-c",
                           f"echo \"{{\\\"{user}\\\": \\\"$$LAMBDALAKE_ADMIN_PASSWORD\\\"}}\" > /opt/airflow/passwords.json"
                           " && airflow db migrate"],
            "volumes": ["airflow-home:/opt/airflow"],
            "depends_on": _healthy("postgres"),
            "restart": "on-failure",
        },
        "airflow-api-server": {
            **common,
            "command": ["api-server"],
            "volumes": ["airflow-home:/opt/airflow"],
            "ports": [_published(config, config.airflow.port)],
            "healthcheck": {"test": ["CMD", "curl", "-fs", f"http://127.0.0.1:{config.airflow.port}/api/v2/version"],
                            "interval": "10s", "timeout": "5s", "retries": 30},
            "depends_on": ready,
        },
    }
    for component in ("scheduler", "dag-processor", "triggerer"):
        services[f"airflow-{component}"] = {**common, "command": [component], "volumes": ["airflow-home:/opt/airflow"],
                                            "depends_on": {**ready, **_healthy("airflow-api-server")}}
    for n in range(1, config.cluster.airflow_workers + 1):
        services[f"airflow-worker-{n}"] = {
            **common,
            "hostname": f"airflow-worker-{n}",
            "command": ["celery", "worker"],
            "volumes": ["airflow-home:/opt/airflow"],
            "depends_on": {**ready, **_healthy("airflow-api-server", "trino", "jobmanager")},
        }
    return services


class _Dumper(yaml.SafeDumper):
    """Multi-line values (Flink's properties) as literal blocks, as a person would write them."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def render(config: Config) -> dict[str, str]:
    """Every file `lambdalake compose` writes, by path relative to docker/."""
    versions = pins()
    layers = {"storage": storage(config), "log": log(config, versions), "speed": speed(config, versions),
              "serving": serving(config, versions), "batch": batch(config, versions)}
    volumes = {"storage": ["postgres-data", "seaweedfs-data"],
               "log": [f"kafka-{n}-data" for n in range(1, config.cluster.kafka_brokers + 1)],
               "batch": ["airflow-home"]}
    files: dict[str, str] = {}
    for layer, services in layers.items():
        document: dict[str, Any] = {"services": services}
        if layer in volumes:
            document["volumes"] = {name: {} for name in volumes[layer]}
        files[f"compose.{layer}.yml"] = HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=10_000)
    for name, node in trino_nodes(config).items():
        for path, text in etc_files(config, node).items():
            files[f"trino/{name}/{path}"] = text
    pg = config.postgres
    files["postgres/init.sql"] = f"-- Airflow's metadata database, beside the catalog's\nCREATE DATABASE {pg.airflow_database};\n"
    s3 = config.storage
    files["seaweedfs/s3.json"] = json.dumps({"identities": [{
        "name": "lambdalake", "credentials": [{"accessKey": s3.s3_access_key, "secretKey": s3.s3_secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}, indent=2) + "\n"
    files[".env"] = ("# docker-compose reads this in docker/: the layers, in the order they start\n"
                     f"COMPOSE_PROJECT_NAME=lambdalake\nCOMPOSE_FILE={':'.join(f'compose.{layer}.yml' for layer in LAYERS)}\n")
    # pyiceberg (the CLI and Airflow's tasks) reads the same store the engines write
    assert s3_properties(config, "pyiceberg"), "docker/cluster.toml must put the warehouse on s3://"
    return files


def cluster_config() -> Config:
    return load_config(CLUSTER_CONFIG, environ={})


def stale(files: dict[str, str], root: Path = DOCKER_DIR) -> list[str]:
    """The rendered files that differ from what is in `root` (paths relative to it)."""
    return sorted(path for path, text in files.items()
                  if not (root / path).exists() or (root / path).read_text() != text)


def write(files: dict[str, str], root: Path = DOCKER_DIR) -> list[str]:
    """Write the files that changed; return their paths."""
    changed = stale(files, root)
    for path in changed:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(files[path])
    return changed
