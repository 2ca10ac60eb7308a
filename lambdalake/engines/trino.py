"""Trino: the serving layer. A single node (coordinator that also works) with catalog `lake`."""

from __future__ import annotations

import os
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
        "jvm.config": "\n".join(["-server", f"-Xmx{node.heap}", *JVM_OPTIONS]) + "\n",
        "config.properties": (f"{role}http-server.http.port={config.trino.port}\ndiscovery.uri={node.discovery_uri}\n"
                              f"query.max-memory={node.query_max_memory}\n"
                              f"query.max-memory-per-node={node.query_max_memory}\nhttp-server.log.enabled=false\n"),
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


class Trino(Engine):
    name = "trino"
    program_names = ("trino",)

    @property
    def etc_dir(self) -> Path:
        return self.state_dir / "etc"

    @property
    def url(self) -> str:
        return f"http://{self.config.address('trino')}:{self.config.trino.port}"

    def programs(self) -> list[Program]:
        home = only_child(engines_dir(self.config), "trino-server-core-*")
        java_home = jdk24_home(self.config)
        return [Program(
            name="trino",
            command=[str(home / "bin" / "launcher"), "run", f"--etc-dir={self.etc_dir}",
                     f"--data-dir={self.state_dir / 'data'}"],
            environment={"JAVA_HOME": str(java_home),
                         "PATH": f"{java_home / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
            stop_wait_seconds=30,
        )]

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
        (self.state_dir / "data").mkdir(parents=True, exist_ok=True)
        node = TrinoNode("lambdalake-coordinator", coordinator=True, bind_ip=self.config.host,
                         data_dir=str(self.state_dir / "data"), discovery_uri=self.url,
                         heap=self.config.trino.heap, query_max_memory=self.config.trino.query_max_memory)
        for name, text in etc_files(self.config, node).items():
            (self.etc_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (self.etc_dir / name).write_text(text)

    def probe(self) -> str | None:
        return "still starting" if fetch_json(f"{self.url}/v1/info").get("starting") else None
