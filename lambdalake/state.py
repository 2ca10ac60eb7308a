"""The platform's own state, in the catalog's PostgreSQL: what it runs and what it watches.

One module writes it. Two tables so far:
- `lambdalake_jobs`: every streaming job the platform expects to run (ingest, the shared speed
  job, each live version), with what it takes to submit it again and where its state is;
  lambdalake.keeper brings back each one that is missing.
- `lambdalake_watched_topics`: the topics platform jobs read, which get heartbeats
  (lambdalake.heartbeat).

Nothing here is parsed out of names: a job is found by the name it was submitted under, and its
restore point is the savepoint or retained checkpoint recorded or found for its last job id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lambdalake.config import Config

SCHEMA = """
create table if not exists lambdalake_watched_topics (
    topic text primary key,
    watched_since timestamptz not null default now()
);
create table if not exists lambdalake_jobs (
    name text primary key,
    script text not null,
    args jsonb not null,
    parallelism int not null,
    -- false once a user stopped or cancelled it: the keeper leaves it alone
    expected boolean not null,
    -- the Flink job id of its latest submission: its retained checkpoints are under that id
    job_id text not null,
    -- set by `lambdalake down` (stop with a savepoint); the next submission starts from it
    savepoint text,
    -- the job id whose checkpoint the latest submission was restored from (removed once the new
    -- job has a checkpoint of its own)
    restored_from text,
    restores int not null default 0,
    submitted_at timestamptz not null default now()
);
"""


def connect(config: Config):  # type: ignore[no-untyped-def]
    """A psycopg connection to the catalog's database, with the state tables in place."""
    from lambdalake.engines.postgres import Postgres

    connection = Postgres(config).connect(config.postgres.catalog_database)
    connection.execute(SCHEMA)
    connection.commit()
    return connection


# --- watched topics ---------------------------------------------------------------------------

def watch(config: Config, topic: str) -> None:
    """Send heartbeats to topic from now on (a platform job reads it). Idempotent."""
    with connect(config) as connection:
        connection.execute("insert into lambdalake_watched_topics (topic) values (%s) on conflict do nothing",
                           (topic,))


def watched(config: Config) -> list[str]:
    with connect(config) as connection:
        return [t for (t,) in connection.execute("select topic from lambdalake_watched_topics order by topic")]


# --- expected jobs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpectedJob:
    name: str
    script: str
    args: list[str]
    parallelism: int
    expected: bool
    job_id: str
    savepoint: str | None
    restored_from: str | None
    restores: int


_COLUMNS = "name, script, args, parallelism, expected, job_id, savepoint, restored_from, restores"


def _job(row: Any) -> ExpectedJob:
    name, script, args, parallelism, expected, job_id, savepoint, restored_from, restores = row
    return ExpectedJob(name, script, args if isinstance(args, list) else json.loads(args), parallelism, expected,
                       job_id, savepoint, restored_from, restores)


def expect(config: Config, name: str, script: str, args: list[str], parallelism: int, job_id: str,
           restored_from: str | None = None) -> None:
    """Record a job the platform just submitted (or found live): it is to be kept running."""
    with connect(config) as connection:
        connection.execute(
            f"insert into lambdalake_jobs ({_COLUMNS}) values (%s, %s, %s::jsonb, %s, true, %s, null, %s, 0) "
            "on conflict (name) do update set script = excluded.script, args = excluded.args, "
            "parallelism = excluded.parallelism, expected = true, job_id = excluded.job_id, savepoint = null, "
            "restored_from = excluded.restored_from, restores = 0, submitted_at = now()",
            (name, script, json.dumps(args), parallelism, job_id, restored_from))


def restored(config: Config, name: str, job_id: str, restored_from: str | None) -> None:
    """Record that the keeper resubmitted the job as job_id, from restored_from's state."""
    with connect(config) as connection:
        connection.execute("update lambdalake_jobs set job_id = %s, restored_from = %s, savepoint = null, "
                           "restores = restores + 1, submitted_at = now() where name = %s",
                           (job_id, restored_from, name))


def restore_failed(config: Config, name: str) -> None:
    with connect(config) as connection:
        connection.execute("update lambdalake_jobs set restores = restores + 1 where name = %s", (name,))


def settled(config: Config, name: str) -> None:
    """The job has a checkpoint of its own: its restore history is over."""
    with connect(config) as connection:
        connection.execute("update lambdalake_jobs set restored_from = null, restores = 0 where name = %s", (name,))


def suspended(config: Config, name: str, savepoint: str, *, expected: bool) -> None:
    """The job was stopped with a savepoint: by `down` (expected: it comes back from it) or by a user."""
    with connect(config) as connection:
        connection.execute("update lambdalake_jobs set savepoint = %s, expected = %s where name = %s",
                           (savepoint, expected, name))


def forget(config: Config, name: str) -> ExpectedJob | None:
    """The job was cancelled for good; return what was recorded of it."""
    with connect(config) as connection:
        row = connection.execute(f"delete from lambdalake_jobs where name = %s returning {_COLUMNS}",
                                 (name,)).fetchone()
        return None if row is None else _job(row)


def expected_jobs(config: Config, *, all_jobs: bool = False) -> list[ExpectedJob]:
    """The jobs to keep running (with all_jobs, the stopped ones too), by name."""
    with connect(config) as connection:
        where = "" if all_jobs else "where expected"
        return [_job(row) for row in connection.execute(f"select {_COLUMNS} from lambdalake_jobs {where} order by name")]
