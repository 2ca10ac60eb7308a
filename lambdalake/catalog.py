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
    """[storage] warehouse, else the local directory under data_dir."""
    return config.storage.warehouse or f"file://{config.warehouse_dir}"


def on_object_store(config: Config) -> bool:
    return warehouse_uri(config).startswith("s3://")


def s3_properties(config: Config, dialect: str) -> dict[str, str]:
    """The object store's endpoint and credentials in `dialect` ("pyiceberg" or "iceberg-java", which
    Flink uses); empty for a local warehouse."""
    if not on_object_store(config):
        return {}
    s3 = config.storage
    if dialect == "pyiceberg":
        return {"s3.endpoint": s3.s3_endpoint, "s3.region": s3.s3_region, "s3.access-key-id": s3.s3_access_key,
                "s3.secret-access-key": s3.s3_secret_key,
                "s3.force-virtual-addressing": str(not s3.s3_path_style).lower()}
    if dialect == "iceberg-java":
        return {"io-impl": "org.apache.iceberg.aws.s3.S3FileIO", "s3.endpoint": s3.s3_endpoint,
                "client.region": s3.s3_region, "s3.access-key-id": s3.s3_access_key,
                "s3.secret-access-key": s3.s3_secret_key, "s3.path-style-access": str(s3.s3_path_style).lower()}
    raise ValueError(f"unknown S3 property dialect {dialect!r}: use 'pyiceberg' or 'iceberg-java'")


def jdbc_url(config: Config) -> str:
    return (f"jdbc:postgresql://{config.address('postgres')}:{config.postgres.port}"
            f"/{config.postgres.catalog_database}")


def load_catalog(config: Config) -> SqlCatalog:
    """The pyiceberg catalog. Creates the catalog's tables in PostgreSQL on first use."""
    from pyiceberg.catalog.sql import SqlCatalog

    pg = config.postgres
    return SqlCatalog(
        config.iceberg.catalog_name,
        uri=f"postgresql+psycopg2://{pg.user}:{pg.password}@{config.address('postgres')}:{pg.port}/{pg.catalog_database}",
        warehouse=warehouse_uri(config),
        **s3_properties(config, "pyiceberg"),
    )


def ensure_catalog(config: Config) -> None:
    """Create the catalog tables, the warehouse directory and every namespace. Idempotent."""
    if not on_object_store(config):
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
        + "".join(f"'{key}'='{value}', " for key, value in s3_properties(config, "iceberg-java").items())
        + f"'warehouse'='{warehouse_uri(config)}')"
    )
