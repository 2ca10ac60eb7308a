"""Trino: the serving layer. A single node (coordinator that also works) with catalog `lake`."""

from __future__ import annotations

import os
from pathlib import Path
from string import Template

from lambdalake.catalog import RETRYABLE_SQL_STATES, warehouse_uri
from lambdalake.config import PROJECT_ROOT
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


class Trino(Engine):
    name = "trino"
    program_names = ("trino",)

    @property
    def etc_dir(self) -> Path:
        return self.state_dir / "etc"

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.trino.port}"

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
        return f"jdbc:trino://{self.config.host}:{self.config.trino.port}/{self.config.iceberg.catalog_name}"

    def cli_command(self, *args: str) -> list[str]:
        """The Trino CLI on catalog `lake`, its queries tagged as the CLI's in Trino's UI."""
        java = jdk24_home(self.config) / "bin" / "java"
        # the CLI's line editor loads a native library: allowed, so Java does not warn on every start
        return [str(java), "--enable-native-access=ALL-UNNAMED", "-jar", str(self.cli_jar), f"--server={self.url}",
                f"--catalog={self.config.iceberg.catalog_name}", "--user=lambdalake", "--source=lambdalake-cli",
                "--client-tags=cli", *args]

    def prepare(self) -> None:
        config, trino = self.config, self.config.trino
        (self.etc_dir / "catalog").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "data").mkdir(exist_ok=True)
        (self.etc_dir / "node.properties").write_text(
            "node.environment=lambdalake\nnode.id=lambdalake-coordinator\n"
            f"node.data-dir={self.state_dir / 'data'}\n"
            f"node.bind-ip={config.host}\nnode.internal-address={config.host}\n")
        (self.etc_dir / "jvm.config").write_text(
            "\n".join(["-server", f"-Xmx{trino.heap}", *JVM_OPTIONS]) + "\n")
        (self.etc_dir / "config.properties").write_text(
            "coordinator=true\nnode-scheduler.include-coordinator=true\n"
            f"http-server.http.port={trino.port}\ndiscovery.uri={self.url}\n"
            f"query.max-memory={trino.query_max_memory}\nquery.max-memory-per-node={trino.query_max_memory}\n"
            "http-server.log.enabled=false\n")
        (self.etc_dir / "log.properties").write_text("io.trino=INFO\n")
        values = {
            "catalog_name": config.iceberg.catalog_name,
            "host": config.host,
            "postgres_port": config.postgres.port,
            "catalog_database": config.postgres.catalog_database,
            "postgres_user": config.postgres.user,
            "postgres_password": config.postgres.password,
            "warehouse_uri": warehouse_uri(config),
            "snapshot_retention": config.serving.history_retention,
            "orphan_retention": config.maintenance.orphan_retention,
            "retryable_sql_states": ",".join(RETRYABLE_SQL_STATES),
        }
        for template in CATALOG_TEMPLATES.glob("*.properties"):
            # the file's name is the catalog's name in Trino
            name = config.iceberg.catalog_name if template.stem == "lake" else template.stem
            rendered = Template(template.read_text()).substitute(values)
            (self.etc_dir / "catalog" / f"{name}.properties").write_text(rendered)

    def probe(self) -> str | None:
        return "still starting" if fetch_json(f"{self.url}/v1/info").get("starting") else None
