"""The Iceberg JDBC catalog on PostgreSQL: one catalog, one name, three engines.

pyiceberg, Flink and Trino all point at the same PostgreSQL database and use the same catalog
name, so a table created by any of them is visible to the other two. Trino never creates the
catalog's own tables; :func:`ensure_catalog` does, through pyiceberg, before Trino starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambdalake.config import Config

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog


#: SQLSTATEs on which Trino's and Flink's catalog clients reconnect and retry: PostgreSQL shutting
#: down or restarting (57P01-57P03) and lost connections (08xxx). Without them, the first catalog
#: call after a PostgreSQL restart fails on a pooled connection the server has closed.
RETRYABLE_SQL_STATES = ("57P01", "57P02", "57P03", "08000", "08001", "08003", "08006")


def warehouse_uri(config: Config) -> str:
    return f"file://{config.warehouse_dir}"


def jdbc_url(config: Config) -> str:
    return f"jdbc:postgresql://{config.host}:{config.postgres.port}/{config.postgres.catalog_database}"


def load_catalog(config: Config) -> SqlCatalog:
    """The pyiceberg catalog. Creates the catalog's tables in PostgreSQL on first use."""
    from pyiceberg.catalog.sql import SqlCatalog

    pg = config.postgres
    return SqlCatalog(
        config.iceberg.catalog_name,
        uri=f"postgresql+psycopg2://{pg.user}:{pg.password}@{config.host}:{pg.port}/{pg.catalog_database}",
        warehouse=warehouse_uri(config),
    )


def ensure_catalog(config: Config) -> None:
    """Create the catalog tables, the warehouse directory and every namespace. Idempotent."""
    config.warehouse_dir.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(config)
    for namespace in config.iceberg.namespaces:
        catalog.create_namespace_if_not_exists(namespace)


def flink_catalog_ddl(config: Config) -> str:
    """Flink SQL that registers the same catalog, under the same name, in a TableEnvironment."""
    pg = config.postgres
    return (
        f"CREATE CATALOG `{config.iceberg.catalog_name}` WITH ("
        "'type'='iceberg', "
        "'catalog-impl'='org.apache.iceberg.jdbc.JdbcCatalog', "
        f"'uri'='{jdbc_url(config)}', "
        f"'jdbc.user'='{pg.user}', "
        f"'jdbc.password'='{pg.password}', "
        f"'jdbc.retryable_status_codes'='{','.join(RETRYABLE_SQL_STATES)}', "
        f"'warehouse'='{warehouse_uri(config)}')"
    )
