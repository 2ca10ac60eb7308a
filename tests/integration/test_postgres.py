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
