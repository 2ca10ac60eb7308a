"""What `up` writes for each engine, checked without starting anything."""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lambdalake.compose import pins
from lambdalake.config import PROJECT_ROOT, Config, PathsConfig
from lambdalake.engines import Program, all_engines
from lambdalake.engines.airflow import Airflow
from lambdalake.engines.kafka import Kafka
from lambdalake.engines.postgres import Postgres
from lambdalake.errors import SetupError
from lambdalake.engines.trino import Trino
from lambdalake.engines.flink import _flatten, client_archive
from lambdalake.supervisor import Supervisor


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return dataclasses.replace(Config(), paths=PathsConfig(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"))


def test_start_order_puts_dependencies_first(config: Config) -> None:
    assert [e.name for e in all_engines(config)] == ["postgres", "kafka", "flink", "trino", "airflow"]


def test_every_engine_names_its_programs_and_has_a_loopback_endpoint(config: Config) -> None:
    for engine in all_engines(config):
        assert engine.program_names, engine.name
        assert "127.0.0.1" in engine.endpoint(), engine.name


def test_programs_match_their_declared_names(config: Config) -> None:
    # postgres and airflow need nothing from setup's cache; the others are covered by `up`
    for engine in (Postgres(config), Airflow(config)):
        assert tuple(p.name for p in engine.programs()) == engine.program_names


def test_programs_not_set_up_say_to_run_setup(config: Config) -> None:
    with pytest.raises(SetupError, match="lambdalake setup"):
        Trino(config).programs()


def test_supervisor_config_quotes_commands_and_escapes_percent(config: Config) -> None:
    supervisor = Supervisor(config)
    supervisor.render([Program("demo", ["/bin/echo", "100%", "two words"], {"A": "x y"}, user="postgres")])
    text = supervisor.conf_file.read_text()
    assert 'command="/bin/echo" "100%%" "two words"' in text
    assert 'environment=A="x y"' in text
    assert "user=postgres" in text
    assert "stopasgroup=true" in text and "killasgroup=true" in text
    assert f"stdout_logfile={config.logs_dir / 'demo.log'}" in text


def test_postgres_is_stopped_with_a_fast_shutdown_that_does_not_wait_for_clients(config: Config) -> None:
    supervisor = Supervisor(config)
    supervisor.render(Postgres(config).programs())
    section = supervisor.conf_file.read_text().split("[program:postgres]")[1]
    assert "stopsignal=INT" in section  # SIGTERM's smart shutdown waits for every pool to close


def test_kafka_listens_on_the_configured_host_and_keeps_the_log_forever(config: Config) -> None:
    kafka = Kafka(dataclasses.replace(config, kafka=dataclasses.replace(config.kafka, port=19092)))
    properties = kafka.server_properties(kafka.brokers()[0]).splitlines()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:9093" in properties
    assert "log.retention.ms=-1" in properties
    assert "auto.create.topics.enable=false" in properties
    assert "log.message.timestamp.type=LogAppendTime" in properties


def test_trino_catalog_uses_the_shared_catalog_name(config: Config) -> None:
    trino = Trino(config)
    trino.prepare()
    catalog = (trino.etc_dir / "catalog" / "lake.properties").read_text()
    assert "iceberg.jdbc-catalog.catalog-name=lake" in catalog
    assert f"connection-url=jdbc:postgresql://127.0.0.1:{config.postgres.port}/iceberg_catalog" in catalog
    assert f"default-warehouse-dir=file://{config.warehouse_dir}" in catalog
    node = (trino.etc_dir / "node.properties").read_text()
    assert "node.bind-ip=127.0.0.1" in node
    assert f"-Xmx{config.trino.heap}" in (trino.etc_dir / "jvm.config").read_text()
    assert f"query.max-memory-per-node={config.trino.query_max_memory}" in (trino.etc_dir / "config.properties").read_text()


def test_flink_yaml_is_flattened_so_our_keys_override_shipped_ones() -> None:
    shipped = {"rest": {"address": "localhost", "port": 8081}, "env": {"java": {"opts": {"all": "--x"}}}}
    assert _flatten(shipped) == {"rest.address": "localhost", "rest.port": 8081, "env.java.opts.all": "--x"}


def test_postgres_state_moves_out_of_a_data_dir_its_user_cannot_reach(tmp_path: Path) -> None:
    from lambdalake.engines.postgres import reachable_by

    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    assert not reachable_by("postgres", hidden / "data")
    assert reachable_by("postgres", Path("/usr/lib/postgresql/not-yet-there"))


def test_a_kafka_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from lambdalake.engines import kafka

    # urlsafe base64 of these bytes starts with '-': the storage tool took it for an option
    ids = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(ids))
    assert kafka.new_cluster_id() == "AQEBAQEBAQEBAQEBAQEBAQ"


def test_our_flink_functions_compile_against_the_flink_that_runs_them() -> None:
    # engines/pom.xml's flink.version (the API FirstCopies is built with) and pyproject.toml's
    # apache-flink (the cluster) are two pins of one version
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(PROJECT_ROOT / "engines" / "pom.xml").getroot()
    assert pom.findtext("m:properties/m:flink.version", namespaces=ns) == pins()["flink"]
    assert "../flink_jobs/functions" in [m.text for m in pom.iterfind("m:modules/m:module", ns)]


def test_the_first_flink_run_writes_the_class_archive_that_later_runs_share(tmp_path: Path) -> None:
    archive = tmp_path / "cds" / "abc.jsa"
    with client_archive(archive) as writing:
        assert writing.startswith("-XX:ArchiveClassesAtExit=") and archive.with_suffix(".lock").exists()
        with client_archive(archive) as meanwhile:
            assert meanwhile == ""  # another run writes it: this one goes without
        Path(writing.partition("=")[2]).write_bytes(b"classes")  # what the JVM writes at exit
    assert archive.read_bytes() == b"classes" and not archive.with_suffix(".lock").exists()
    with client_archive(archive) as sharing:
        assert sharing == f"-XX:SharedArchiveFile={archive}"


def test_a_failed_flink_run_keeps_no_class_archive_and_a_dead_writers_lock_expires(tmp_path: Path) -> None:
    archive = tmp_path / "abc.jsa"
    with pytest.raises(RuntimeError), client_archive(archive) as writing:
        Path(writing.partition("=")[2]).write_bytes(b"half")
        raise RuntimeError("flink run failed")
    assert list(tmp_path.iterdir()) == []
    archive.with_suffix(".lock").touch()
    os.utime(archive.with_suffix(".lock"), (0, 0))  # left by a writer that died long ago
    with client_archive(archive) as sharing:
        assert sharing == ""
    with client_archive(archive) as sharing:
        assert sharing.startswith("-XX:ArchiveClassesAtExit=")


def test_engine_opts_reach_kafka_and_flinks_long_running_jvms_and_trino_opts_trino(config: Config) -> None:
    from lambdalake.config import JavaConfig
    from lambdalake.engines.flink import CLIENT_JAVA_OPTS, FlinkNode, flink_settings
    from lambdalake.engines.trino import etc_files

    opts = "-XX:TieredStopAtLevel=1 -Dx=y"
    tuned = dataclasses.replace(config, java=JavaConfig(engine_opts=opts, trino_opts="-Dt=1"))
    (config.cache_dir / "engines" / "kafka-4.1.0" / "libs").mkdir(parents=True)  # as setup leaves it
    kafka = Kafka(tuned)
    assert kafka._java("kafka.Kafka", log_config=Path("l.yaml"))[3:5] == ["-XX:TieredStopAtLevel=1", "-Dx=y"]
    node = FlinkNode("127.0.0.1", "127.0.0.1", "127.0.0.1", "file:///c", "file:///s", "/w", "python", "1g", "2g", 2)
    settings = flink_settings(tuned, node)
    assert settings["env.java.opts.jobmanager"] == settings["env.java.opts.taskmanager"] == opts
    assert settings["env.java.opts.client"] == CLIENT_JAVA_OPTS
    assert "env.java.opts.taskmanager" not in flink_settings(config, node)  # Flink's own default stays
    trino_node = Trino(tuned).nodes()[0].settings
    jvm = etc_files(tuned, trino_node)["jvm.config"].splitlines()
    assert jvm[-1] == "-Dt=1" and "-Dx=y" not in jvm, jvm
