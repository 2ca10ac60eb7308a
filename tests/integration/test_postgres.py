from __future__ import annotations

import psycopg

from lambdalake.config import Config


def test_catalog_and_airflow_databases_exist_and_the_catalog_has_its_tables(config: Config) -> None:
    pg = config.postgres
    with psycopg.connect(host=config.host, port=pg.port, user=pg.user, password=pg.password,
                         dbname=pg.catalog_database) as conn:
        databases = {row[0] for row in conn.execute("select datname from pg_database")}
        tables = {row[0] for row in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
        namespaces = {row[0] for row in conn.execute(
            "select distinct namespace from iceberg_namespace_properties where catalog_name = %s",
            (config.iceberg.catalog_name,))}
    assert {pg.catalog_database, pg.airflow_database} <= databases
    assert {"iceberg_tables", "iceberg_namespace_properties"} <= tables
    assert set(config.iceberg.namespaces) <= namespaces


def test_listens_only_on_the_configured_host(config: Config) -> None:
    pg = config.postgres
    with psycopg.connect(host=config.host, port=pg.port, user=pg.user, password=pg.password,
                         dbname="postgres") as conn:
        assert conn.execute("show listen_addresses").fetchone() == (config.host,)


def _open_state_connection(_: int) -> int:
    from lambdalake import state
    from lambdalake.config import load_config

    state.connect(load_config()).close()
    return 1


def test_state_connections_from_many_new_processes_at_once_do_not_deadlock() -> None:
    """Each new process puts the state tables in place on its first connection (as Airflow's task
    processes, the keeper and the CLI do); twelve at once deadlocked before that DDL took a lock."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawned, not forked: each starts without this process's memory of the tables being in place
    with ProcessPoolExecutor(12, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert sum(pool.map(_open_state_connection, range(48))) == 48


def test_the_state_tables_ddl_runs_while_holding_the_schema_lock(config: Config, monkeypatch) -> None:
    """The lock is a transaction's: taken in a statement of its own on an autocommit connection, it
    was released before the DDL ran (and the deadlock above came back in CI)."""
    from lambdalake import state

    # what "the DDL" sees: the advisory locks its own session holds while it runs
    monkeypatch.setattr(state, "SCHEMA", "create temporary table schema_lock_seen as select count(*) as held "
                                         "from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() "
                                         "and granted")
    monkeypatch.setattr(state, "_SCHEMA_READY", set())
    with state.connect(config) as connection:
        assert connection.execute("select held from schema_lock_seen").fetchone() == (1,)
