"""Trino as its users reach it: the Python client, the real Trino CLI, the JDBC driver; each query
names who sent it."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import trino

from lambdalake.config import Config
from lambdalake.engines.postgres import Postgres
from lambdalake.engines.trino import Trino
from lambdalake.install import jdk24_home
from lambdalake.platform import status
from lambdalake.query import run_delete, run_query
from lambdalake.supervisor import Supervisor
from tests.integration.conftest import LAMBDALAKE



def test_select_through_the_python_dbapi(config: Config) -> None:
    conn = trino.dbapi.connect(host=config.host, port=config.trino.port, user="test")
    cursor = conn.cursor()
    cursor.execute("select 6 * 7")
    assert cursor.fetchall() == [[42]]


def test_lake_catalog_has_every_platform_schema(config: Config) -> None:
    conn = trino.dbapi.connect(host=config.host, port=config.trino.port, user="test")
    cursor = conn.cursor()
    cursor.execute(f"show schemas from {config.iceberg.catalog_name}")
    schemas = {row[0] for row in cursor.fetchall()}
    assert set(config.iceberg.namespaces) <= schemas


def test_the_trino_cli_runs_on_the_lake_catalog_and_names_itself(config: Config) -> None:
    marker = f"cli_{uuid.uuid4().hex[:8]}"
    sql = f"select count(*) as {marker} from information_schema.schemata where schema_name = 'serving'"
    out = subprocess.run([LAMBDALAKE, "trino", "--execute", sql], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '"1"', out.stdout  # `serving`, found in catalog `lake` without naming it
    assert sources_of(config, marker) == ["lambdalake-cli"]


def test_the_jdbc_driver_answers_what_dbeaver_would_ask(config: Config, tmp_path: Path) -> None:
    engine = Trino(config)
    program = tmp_path / "Ask.java"
    program.write_text("""
        import java.sql.*;
        public class Ask {
            public static void main(String[] args) throws Exception {
                try (Connection c = DriverManager.getConnection(args[0], "lambdalake", null);
                     ResultSet r = c.createStatement().executeQuery("select 6 * 7")) {
                    r.next();
                    System.out.println(r.getInt(1) + " " + c.getCatalog());
                }
            }
        }""")
    java = jdk24_home(config) / "bin" / "java"
    out = subprocess.run([str(java), "-cp", str(engine.jdbc_jar), str(program), engine.jdbc_url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["42", config.iceberg.catalog_name]


def test_queries_say_which_verb_sent_them(config: Config) -> None:
    marker = f"verb_{uuid.uuid4().hex[:8]}"
    out = subprocess.run([LAMBDALAKE, "query", f"select 1 as {marker}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sources_of(config, marker) == ["lambdalake-cli query"]


def sources_of(config: Config, marker: str) -> list[str]:
    """The source of each query Trino ran whose text holds marker (this lookup's own aside)."""
    conn = trino.dbapi.connect(host=config.host, port=config.trino.port, user="test")
    cursor = conn.cursor()
    cursor.execute("select source from system.runtime.queries where query like ? and query not like ?",
                   [f"%{marker}%", "%system.runtime.queries%"])
    return [row[0] for row in cursor.fetchall()]


def test_a_delete_racing_another_writer_of_its_table_is_tried_again_and_keeps_what_the_other_wrote(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """Two writers of one meta table, as two batch runs recording their views' accuracy (or the
    other test lane's): one appends, the other deletes its own earlier rows. Iceberg keeps a
    string's first 16 characters as its bounds, so every name below shares them and each append
    can hold a row the delete matches: Trino refused such a delete (ICEBERG_COMMIT_ERROR, seen in
    CI); run_delete tries it again on the new snapshot."""
    table = f"meta.race_{uuid.uuid4().hex[:8]}"
    kept, gone = "serving.events_per_type__kept", "serving.events_per_type__gone"
    run_query(config, f"create table {table} (view varchar, n bigint)")
    appended: list[int] = []
    stop = threading.Event()

    def append() -> None:
        while not stop.is_set():
            run_query(config, f"insert into {table} values (?, ?)", [kept, len(appended)])
            appended.append(len(appended))

    writer = threading.Thread(target=append)
    caplog.set_level(logging.WARNING, logger="lambdalake.query")
    writer.start()
    try:
        for attempt in range(40):
            run_query(config, f"insert into {table} values (?, ?)", [gone, attempt])
            run_delete(config, f"delete from {table} where view = ?", [gone])
            refused = [r for r in caplog.records if "concurrent commit refused" in r.getMessage()]
            if len(refused) >= 2:
                break
        stop.set()
        writer.join(timeout=60)
        assert refused, "in 40 deletes beside an appending writer, Trino refused none: the race was not exercised"
        [[left_gone]] = run_query(config, f"select count(*) from {table} where view = ?", [gone])[1]
        _, kept_rows = run_query(config, f"select n from {table} where view = ? order by n", [kept])
        assert left_gone == 0
        assert [row[0] for row in kept_rows] == appended  # the appends the delete raced are all there
    finally:
        stop.set()
        writer.join(timeout=60)
        run_query(config, f"drop table {table}")


@pytest.mark.serial  # restarts PostgreSQL, which every engine uses
def test_the_catalog_answers_the_first_query_after_postgres_restarts(config: Config) -> None:
    """Trino pools its connections to the catalog's PostgreSQL; once PostgreSQL restarted, the
    first query used to fail (`Cannot check and eventually update SQL schema`) on a pooled
    connection the server had closed. It reconnects and retries on those SQLSTATEs now."""
    listing = "select count(*) from information_schema.tables where table_schema = 'raw'"
    before = run_query(config, listing)[1]  # the pool holds a connection now
    supervisor = Supervisor(config)
    supervisor.stop("postgres")
    supervisor.start("postgres")
    deadline = time.monotonic() + 60
    while Postgres(config).health() is not None:
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.5)
    try:
        assert run_query(config, listing)[1] == before
    finally:  # every engine that uses PostgreSQL (Airflow, the keeper) is back before the next test
        deadline = time.monotonic() + 180
        while not all(s.healthy for s in status(config)):
            assert time.monotonic() < deadline, [s for s in status(config) if not s.healthy]
            time.sleep(2)
