"""Trino: the serving layer, with catalog `lake`: one node (a coordinator that also works), or a
coordinator and workers."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from string import Template

from lambdalake.catalog import RETRYABLE_SQL_STATES, on_object_store, warehouse_uri
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.engines import Engine, Program, fetch_json
from lambdalake.install import engines_dir, jdk24_home, only_child

CATALOG_TEMPLATES = PROJECT_ROOT / "sql" / "trino" / "catalog"

JVM_OPTIONS = [
    "-XX:+UseG1GC",
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dfile.encoding=UTF-8",
    "-XX:+EnableDynamicAgentLoading",
]


@dataclass(frozen=True)
class TrinoNode:
    """One Trino server: the coordinator (which also works on one machine) or a worker."""
    node_id: str
    coordinator: bool
    bind_ip: str
    data_dir: str
    discovery_uri: str
    heap: str
    query_max_memory: str
    #: a coordinator leaves the work to its workers when it has them
    include_coordinator: bool = True
    #: the node's HTTP port; None means [trino] port (each container has its own address)
    http_port: int | None = None


#: How long a node keeps a finished task's info (Trino's default: 15m). The coordinator reads it
#: within seconds of the end, but each node walks every task it keeps five times a second
#: (SqlTaskManager.failAbandonedTasks), building its info. Measured here after ~3,000 small queries,
#: an idle coordinator spent 16 CPU-s a minute on it at the default, 5 at one minute.
TASK_INFO_MAX_AGE = "1m"


def filesystem_properties(config: Config) -> str:
    """The catalog's file system lines: Trino's native S3 for an s3:// warehouse, else the local disk."""
    if not on_object_store(config):
        return "fs.native-local.enabled=true\nlocal.location=/"
    s3 = config.storage
    return "\n".join(["fs.native-s3.enabled=true", f"s3.endpoint={s3.s3_endpoint}", f"s3.region={s3.s3_region}",
                      f"s3.path-style-access={str(s3.s3_path_style).lower()}", f"s3.aws-access-key={s3.s3_access_key}",
                      f"s3.aws-secret-key={s3.s3_secret_key}"])


def etc_files(config: Config, node: TrinoNode) -> dict[str, str]:
    """Every file of one node's etc/ directory (relative path -> text), from the config: what `up` writes
    for its single node and `lambdalake compose` for the cluster's."""
    role = (f"coordinator=true\nnode-scheduler.include-coordinator={str(node.include_coordinator).lower()}\n"
            if node.coordinator else "coordinator=false\n")
    files = {
        "node.properties": (f"node.environment=lambdalake\nnode.id={node.node_id}\nnode.data-dir={node.data_dir}\n"
                            f"node.bind-ip={node.bind_ip}\n"
                            + (f"node.internal-address={node.bind_ip}\n" if node.bind_ip != "0.0.0.0" else "")),
        "jvm.config": "\n".join(["-server", f"-Xmx{node.heap}", *JVM_OPTIONS, *shlex.split(config.java.trino_opts)]) + "\n",
        "config.properties": (f"{role}http-server.http.port={node.http_port or config.trino.port}\ndiscovery.uri={node.discovery_uri}\n"
                              f"query.max-memory={node.query_max_memory}\n"
                              f"query.max-memory-per-node={node.query_max_memory}\nhttp-server.log.enabled=false\n"
                              f"task.info.max-age={TASK_INFO_MAX_AGE}\n"),
        "log.properties": "io.trino=INFO\n",
    }
    values = {
        "catalog_name": config.iceberg.catalog_name,
        "host": config.address("postgres"),
        "postgres_port": config.postgres.port,
        "catalog_database": config.postgres.catalog_database,
        "postgres_user": config.postgres.user,
        "postgres_password": config.postgres.password,
        "warehouse_uri": warehouse_uri(config),
        "filesystem": filesystem_properties(config),
        "snapshot_retention": config.serving.history_retention,
        "orphan_retention": config.maintenance.orphan_retention,
        "retryable_sql_states": ",".join(RETRYABLE_SQL_STATES),
    }
    for template in sorted(CATALOG_TEMPLATES.glob("*.properties")):
        # the file's name is the catalog's name in Trino
        name = config.iceberg.catalog_name if template.stem == "lake" else template.stem
        files[f"catalog/{name}.properties"] = Template(template.read_text()).substitute(values)
    return files


@dataclass(frozen=True)
class LocalNode:
    """One Trino server of the embedded cluster: its program, state and settings."""
    program: str
    state_dir: Path
    settings: TrinoNode


class Trino(Engine):
    """The coordinator (which also works, on one machine), and on the cluster profile [cluster]
    trino_workers workers beside it, on this host."""

    name = "trino"

    @property
    def program_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("trino", *(f"trino-worker-{n}" for n in range(1, self.config.trino_workers + 1)))

    def nodes(self) -> list[LocalNode]:
        config, cluster = self.config, self.config.cluster
        heap, memory = ((cluster.trino_heap, cluster.trino_query_max_memory) if config.clustered
                        else (config.trino.heap, config.trino.query_max_memory))
        workers = config.trino_workers
        nodes = [LocalNode("trino", self.state_dir, TrinoNode(
            "lambdalake-coordinator", coordinator=True, bind_ip=config.host, data_dir=str(self.state_dir / "data"),
            discovery_uri=self.url, heap=heap, query_max_memory=memory, include_coordinator=workers == 0))]
        for n in range(1, workers + 1):
            state_dir = self.state_dir / f"worker-{n}"
            nodes.append(LocalNode(f"trino-worker-{n}", state_dir, TrinoNode(
                f"lambdalake-worker-{n}", coordinator=False, bind_ip=config.host, data_dir=str(state_dir / "data"),
                discovery_uri=self.url, heap=heap, query_max_memory=memory,
                http_port=cluster.trino_worker_port + n - 1)))
        return nodes

    @property
    def etc_dir(self) -> Path:
        return self.state_dir / "etc"

    @property
    def url(self) -> str:
        return f"http://{self.config.address('trino')}:{self.config.trino.port}"

    def programs(self) -> list[Program]:
        home = only_child(engines_dir(self.config), "trino-server-core-*")
        java_home = jdk24_home(self.config)
        environment = {"JAVA_HOME": str(java_home), "PATH": f"{java_home / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        return [Program(name=node.program, environment=environment, stop_wait_seconds=30,
                        command=[str(home / "bin" / "launcher"), "run", f"--etc-dir={node.state_dir / 'etc'}",
                                 f"--data-dir={node.state_dir / 'data'}"])
                for node in self.nodes()]

    def ports(self) -> dict[int, str]:
        return {node.settings.http_port or self.config.trino.port:
                "cluster.trino_worker_port" if node.settings.http_port else "trino.port" for node in self.nodes()}

    def endpoint(self) -> str:
        return self.url

    @property
    def cli_jar(self) -> Path:
        return engines_dir(self.config) / "trino-clients" / "trino-cli-executable.jar"

    @property
    def jdbc_jar(self) -> Path:
        return engines_dir(self.config) / "trino-clients" / "trino-jdbc.jar"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:trino://{self.config.address('trino')}:{self.config.trino.port}/{self.config.iceberg.catalog_name}"

    def cli_command(self, *args: str) -> list[str]:
        """The Trino CLI on catalog `lake`, its queries tagged as the CLI's in Trino's UI."""
        java = jdk24_home(self.config) / "bin" / "java"
        # the CLI's line editor loads a native library: allowed, so Java does not warn on every start
        return [str(java), "--enable-native-access=ALL-UNNAMED", "-jar", str(self.cli_jar), f"--server={self.url}",
                f"--catalog={self.config.iceberg.catalog_name}", "--user=lambdalake", "--source=lambdalake-cli",
                "--client-tags=cli", *args]

    def prepare(self) -> None:
        for node in self.nodes():
            (node.state_dir / "data").mkdir(parents=True, exist_ok=True)
            for name, text in etc_files(self.config, node.settings).items():
                (node.state_dir / "etc" / name).parent.mkdir(parents=True, exist_ok=True)
                (node.state_dir / "etc" / name).write_text(text)

    def probe(self) -> str | None:
        if fetch_json(f"{self.url}/v1/info").get("starting"):
            return "still starting"
        if self.config.trino_workers:
            # a worker's own /v1/info answers without authentication, the coordinator's node list does not
            for node in self.nodes()[1:]:
                if fetch_json(f"http://{self.config.host}:{node.settings.http_port}/v1/info").get("starting"):
                    return f"{node.program} still starting"
            active = self.active_workers()
            if active < self.config.trino_workers:
                return f"{active} of {self.config.trino_workers} workers active"
        return None

    def active_workers(self) -> int:
        """Workers the coordinator schedules on (system.runtime.nodes, not the coordinator)."""
        import trino.dbapi

        with trino.dbapi.connect(host=self.config.address("trino"), port=self.config.trino.port, user="lambdalake",
                                 source="lambdalake-health", request_timeout=5) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT count(*) FROM system.runtime.nodes WHERE coordinator = false AND state = 'active'")
            return int(cursor.fetchone()[0])
