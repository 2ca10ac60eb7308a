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

from lambdalake import accuracy
from lambdalake.config import Config
from lambdalake.engines.postgres import Postgres
from lambdalake.engines.trino import Trino
from lambdalake.install import jdk24_home
from lambdalake.platform import status
from lambdalake.query import run_delete, run_query
from lambdalake.supervisor import Supervisor
from lambdalake.tables import ensure_table
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


def test_a_finished_tasks_info_is_dropped_after_a_minute_while_its_query_stays_listed(config: Config) -> None:
    """Each node forgets a finished task after TASK_INFO_MAX_AGE, not Trino's 15 minutes: it walks
    every task it keeps five times a second. The query stays in system.runtime.queries (and the UI)."""
    # a finished query has had a task on some node
    ended_before = "q.state = 'FINISHED' and q.\"end\" < current_timestamp - interval '75' second"
    run_query(config, "select 1")  # a query of this test's own, should every earlier one be gone
    deadline = time.monotonic() + 120
    while not (old := run_query(config, f"select count(*) from system.runtime.queries q where {ended_before}")[1][0][0]):
        assert time.monotonic() < deadline, "no query finished more than 75 s ago"
        time.sleep(5)
    _, kept = run_query(config, "select t.node_id, t.task_id, t.state, t.\"end\" from system.runtime.tasks t "
                                f"join system.runtime.queries q on t.query_id = q.query_id where {ended_before}")
    assert kept == [], f"{len(kept)} tasks of the {old} queries that finished over 75 s ago are still kept: {kept[:3]}"


def test_the_accuracy_table_takes_a_views_delete_while_another_view_appends(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """Two batch runs record their views' accuracy at once (or two test lanes do): one appends its
    rows while the other deletes its own earlier ones. Trino bounds a string column by its first
    16 characters, so under serializable deletes every append of a `serving.events_p…` row could
    hold the deleted view's rows: Trino refused 14 of 15 such deletes beside a steady writer,
    and a CI teardown once. meta.view_accuracy takes deletes with snapshot isolation: none is
    refused for an append, and no appended row is lost."""
    # a table of its own, declared as meta.view_accuracy: the platform's own would keep every commit
    table = f"meta.view_accuracy_{uuid.uuid4().hex[:8]}"
    ensure_table(config, accuracy.META_TABLE, table)
    kept, gone = "serving.events_per_type__kept", "serving.events_per_type__gone"
    # batch tables named as the platform names them: they share their first 16 characters too
    kept_table, gone_table = "batch.events_per_type__kept__b202612070700", "batch.events_per_type__gone__b202612070700"
    insert = (f"insert into {table} (recorded_at, view, batch_table, boundary, event_time_bucket, dimensions, "
              "measure, speed_answer) values (current_timestamp, ?, ?, current_timestamp, current_timestamp, '{}', "
              "'events', ?)")
    appended: list[int] = []
    failed: list[Exception] = []
    stop = threading.Event()

    def append() -> None:
        try:
            while not stop.is_set():
                run_query(config, insert, [kept, kept_table, len(appended)])
                appended.append(len(appended))
        except Exception as exc:  # noqa: BLE001 - asserted below
            failed.append(exc)

    writer = threading.Thread(target=append)
    caplog.set_level(logging.WARNING, logger="lambdalake.query")
    writer.start()
    try:
        for attempt in range(15):
            run_query(config, insert, [gone, gone_table, attempt])
            run_delete(config, f"delete from {table} where view = ? and batch_table = ?", [gone, gone_table])
        stop.set()
        writer.join(timeout=60)
        refused = [r.getMessage() for r in caplog.records if "Found conflicting files" in r.getMessage()]
        assert not refused, refused
        assert not failed, failed
        [[left]] = run_query(config, f"select count(*) from {table} where view = ?", [gone])[1]
        _, rows = run_query(config, f"select speed_answer from {table} where view = ? order by speed_answer", [kept])
        assert left == 0
        assert len(appended) > 5, appended  # the writer did append beside the deletes
        assert [int(row[0]) for row in rows] == appended  # the appends the deletes raced are all there
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
