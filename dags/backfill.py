"""
### Backfill

Loads history files into the platform and has the batch layer recompute the lambda views over
them. `lambdalake import` does the same from a shell.

1. **load** — reads each file the `paths` param names (JSON lines or Parquet, paths or globs
   under the import root, `[paths] import_root`) and sends its records to the log with headers
   that mark them imported. The ingest job judges them by the platform's rules, exempt from the
   30-day lateness window alone: good ones reach `raw.events` with their file and row, bad ones
   `raw.events_rejected` with their reason. Events outside the `from`/`to` event-time range are
   skipped. A file imported before (the same content, under any path) sends nothing. The log
   says each file's records, accepted, rejected and skipped. With `dry_run` on, it only reads and
   counts.
2. **ingested** — waits until the master dataset is complete past the import: the batch layer's
   boundary B has moved past the moment the last file was committed to the log.
3. **recompute** — emits an asset event on the master dataset (`lake://raw/events`), on which
   `batch_recompute` is scheduled besides its clock: that run takes the imported events in.

Serving shows the imported events from the speed layer as soon as the speed job has counted them,
before the recompute. Kappa views read the log, so they count the imported events as they stream.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Asset, AssetAlias, Param, dag, task

from lambdalake import names
from lambdalake.config import load_config
from lambdalake.dag_defaults import dag_defaults

#: the master dataset a backfill filled: an asset event on `lake://<events table>`
IMPORTED = AssetAlias("lambdalake-imported")


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    **dag_defaults(retries=1),
    schedule=None,
    tags=["lambdalake", "batch", "import"],
    params={
        "paths": Param([], type="array", minItems=1, items={"type": "string", "minLength": 1},
                       title="Files", description="Paths or globs of history files (JSON lines or Parquet) under "
                                                  "the import root, one per line, e.g. 2025/*.parquet"),
        "from": Param(None, type=["null", "string"], format="date-time", title="Event time from",
                      description="Only events at or after it; empty: no lower bound."),
        "to": Param(None, type=["null", "string"], format="date-time", title="Event time to",
                    description="Only events before it; empty: no upper bound."),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Read and count; send nothing."),
        "topic": Param(None, type=["null", "string"], pattern=names.TOPIC_PATTERN,
                       title="Kafka topic", description="Empty: the config's events topic."),
        "events_table": Param("raw.events", type="string", pattern=names.TABLE_PATTERN, title="Master dataset"),
        "rejected_table": Param("raw.events_rejected", type="string", pattern=names.TABLE_PATTERN,
                                title="Rejected records"),
    },
)
def backfill() -> None:
    @task
    def load(params: dict) -> dict:  # type: ignore[type-arg]
        from lambdalake.imports import load_from_params

        return load_from_params(load_config(), params, print)

    @task
    def ingested(loaded: dict, params: dict) -> dict:  # type: ignore[type-arg]
        from lambdalake.imports import wait_until_ingested

        return wait_until_ingested(load_config(), params, loaded, print)

    @task(outlets=[IMPORTED])
    def recompute(done: dict, params: dict, outlet_events=None) -> None:  # type: ignore[no-untyped-def,type-arg]
        if not done["sent"]:
            print("nothing was sent: no recompute is needed")
            return
        outlet_events[IMPORTED].add(Asset(f"lake://{done['events_table'].replace('.', '/')}"), extra=done)
        print(f"asset event on lake://{done['events_table'].replace('.', '/')}: batch_recompute takes the import in")

    recompute(ingested(load()))


backfill()
