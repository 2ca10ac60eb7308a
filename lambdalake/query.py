"""SQL through Trino, the serving layer, with the Python DB-API client."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lambdalake.config import Config
from lambdalake.errors import QueryError

log = logging.getLogger(__name__)
#: how often run_delete tries a delete that concurrent commits to its table keep refusing
DELETE_ATTEMPTS = 6


def attribution() -> tuple[str, list[str]]:
    """Who is asking, for Trino's UI and its query history: the source and client tags of this
    process's queries. An Airflow task is named by its DAG, task and run (Airflow puts them in the
    task's environment); anything else by the `lambdalake` verb or the program that runs."""
    dag, task = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_TASK_ID")
    if dag and task:
        run = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID", "")
        return f"lambdalake-airflow {dag}.{task}", [f"dag={dag}", f"task={task}", f"run={run}"]
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program == "lambdalake":
        words = []
        for arg in sys.argv[1:3]:  # the verb, and its subcommand if it has one; never a SQL argument
            if not re.fullmatch(r"[a-z][a-z-]{0,30}", arg):
                break
            words.append(arg)
        verb = " ".join(words)
        return f"lambdalake-cli {verb}".rstrip(), ["cli", f"verb={verb}"]
    return f"lambdalake {program}"[:100], [f"program={program}"]


def connect(config: Config, schema: str | None = None,
            session: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    import trino

    source, tags = attribution()
    return trino.dbapi.connect(host=config.address('trino'), port=config.trino.port, user="lambdalake",
                               catalog=config.iceberg.catalog_name, schema=schema, source=source, client_tags=tags,
                               session_properties=session or {})


def run_query(config: Config, sql: str, params: Sequence[Any] | None = None,
              session: dict[str, str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Run one statement, with values bound to its `?` placeholders and Trino session properties
    set; return its column names and all rows."""
    from trino.exceptions import TrinoQueryError

    with connect(config, session=session) as conn:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        except TrinoQueryError as exc:
            raise QueryError(f"Trino: {exc.error_name}: {exc.message}", exc.error_name) from exc
        columns = [d[0] for d in cursor.description or []]
    return columns, rows


def run_delete(config: Config, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Run one DELETE on an Iceberg table that others write meanwhile; try it again when a
    concurrent commit made Iceberg refuse it (Trino's ICEBERG_COMMIT_ERROR), up to DELETE_ATTEMPTS
    times, a random 0.2-4 s apart.

    Iceberg refuses a delete when a commit since it began rewrote or deleted the files it deletes
    from (a compaction, another delete of the same rows), or, under serializable isolation, when
    an appended file may hold a row it matches (meta.view_accuracy takes snapshot isolation for
    that reason: iceberg/tables.yaml). The next attempt reads the new snapshot, and a delete is
    idempotent, so trying again is what the caller meant."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

    def conflicted(exc: BaseException) -> bool:
        return isinstance(exc, QueryError) and exc.error_name == "ICEBERG_COMMIT_ERROR"

    def say(state: Any) -> None:
        log.warning("a concurrent commit refused this delete (attempt %d of %d), trying again: %s",
                    state.attempt_number, DELETE_ATTEMPTS, state.outcome.exception())

    for attempt in Retrying(retry=retry_if_exception(conflicted), stop=stop_after_attempt(DELETE_ATTEMPTS),
                            wait=wait_random_exponential(multiplier=0.2, min=0.2, max=4), before_sleep=say,
                            reraise=True):
        with attempt:
            return run_query(config, sql, params)
    raise AssertionError("unreachable: Retrying reraises the last error")
