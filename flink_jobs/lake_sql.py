"""Run Flink SQL statements against the `lake` Iceberg catalog; print each query's rows as JSON.

Submit to the session cluster (a `lambdalake` verb wraps this):

    bin/flink run -py flink_jobs/lake_sql.py "SELECT * FROM meta.demo"

Statements run in batch mode, in order. Each query prints one line `{"columns": [...]}` and
then one `{"row": [...]}` line per row, so callers can pick them out of Flink's own output.
"""

from __future__ import annotations

import argparse
import json

from pyflink.table import EnvironmentSettings, TableEnvironment

from lambdalake.catalog import flink_catalog_ddl
from lambdalake.config import load_config


def run(statements: list[str]) -> None:
    config = load_config()
    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())

    # the catalog pyiceberg and Trino share
    env.execute_sql(flink_catalog_ddl(config))
    env.use_catalog(config.iceberg.catalog_name)

    for statement in statements:
        result = env.execute_sql(statement)
        if statement.lstrip().lower().startswith(("select", "with", "show", "describe")):
            print(json.dumps({"columns": list(result.get_resolved_schema().get_column_names())}), flush=True)
            with result.collect() as rows:
                for row in rows:
                    print(json.dumps({"row": list(row)}, default=str), flush=True)
        else:
            result.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("statements", nargs="+", help="Flink SQL statements, run in order")
    run(parser.parse_args().statements)
