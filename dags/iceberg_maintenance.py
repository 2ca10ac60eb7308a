"""
### Iceberg maintenance

Keeps the tables the streaming jobs append to (`raw.*`, `speed.*`) fast to read. For each table
(one task each):

1. **compact** small files with Trino's `optimize` (files under `[maintenance] file_size_threshold`);
2. **expire snapshots** older than `[serving] history_retention` (time travel reads the rest);
3. **remove orphan files** older than `[maintenance] orphan_retention`.

Then the **janitor** drops the batch tables and retired versions that no answer within
`[serving] history_retention` needs (`lambdalake/janitor.py`).

Safe while the jobs stream (see `lambdalake/maintenance.py`) and to retry. The task log shows the
files before and after. The `tables` param limits a run to some tables.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param, dag, task

from lambdalake.config import load_config
from lambdalake.dag_defaults import clock, dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    **dag_defaults(retry_delay_seconds=30),
    schedule=clock(load_config().maintenance.schedule),
    tags=["lambdalake", "maintenance"],
    params={
        "tables": Param([], type="array", title="Tables",
                        items={"type": "string", "pattern": r"^(raw|speed)\.[a-z][a-z0-9_]{0,62}$"},
                        description="Only these raw.* or speed.* tables; empty means all of them."),
    },
)
def iceberg_maintenance() -> None:
    @task
    def tables(params: dict) -> list[str]:  # type: ignore[type-arg]
        from airflow.sdk.exceptions import AirflowFailException

        from lambdalake.maintenance import maintained_tables

        known = maintained_tables(load_config())
        unknown = sorted(set(params["tables"]) - set(known))
        if unknown:
            raise AirflowFailException(f"no such table(s): {', '.join(unknown)}")
        return params["tables"] or known

    @task
    def maintain(table: str) -> dict[str, object]:
        from dataclasses import asdict

        from lambdalake.maintenance import maintain as run_maintenance

        return asdict(run_maintenance(load_config(), table))

    @task
    def janitor() -> list[str]:
        from lambdalake.janitor import sweep

        dropped = sweep(load_config())
        print(f"dropped {len(dropped)} table(s) no answer within the history retention needs: "
              f"{', '.join(dropped) or 'none'}")
        return dropped

    maintain.expand(table=tables()) >> janitor()


iceberg_maintenance()
