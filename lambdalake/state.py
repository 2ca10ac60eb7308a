"""The platform's own state, in the catalog's PostgreSQL: what it runs and what it watches.

One module writes it:
- `lambdalake_jobs`: every streaming job the platform expects to run (ingest, the shared speed
  job, each live version), with what it takes to submit it again and where its state is;
  lambdalake.keeper brings back each one that is missing.
- `lambdalake_watched_topics`: the topics platform jobs read, which get heartbeats
  (lambdalake.heartbeat).
- `lambdalake_serving`: what each `serving.<view>` answers from now: the version, the speed
  table, the batch table and its boundary B, the master dataset's snapshot B was computed from.
- `lambdalake_serving_steps`: the history behind it, one row per step that replaced a serving
  view (created, a batch run's swap, a reprocessing switch): when it started and went live, B
  before and after, rows written, seconds, the Airflow run; for a batch run, whether it was full
  or incremental and why, and the event-time buckets it recomputed. lambdalake.serving writes a step as
  pending, replaces the view, then marks it live.
- `lambdalake_counted_copies`: per master dataset, the table where the latest batch run wrote the
  copies that count (judged once for all its views), what they were judged from (snapshot, B,
  horizon, the ingest-time start of an incremental run) and the snapshot that holds them.
- `lambdalake_imports`: every history file sent to the log (lambdalake.imports), by checksum,
  with its path, the event-time range asked for and its counts.
- `lambdalake_speed_tables`: every speed table the platform made, which is every version of a
  view: a view's base (`speed.<view>`, a branch of the shared speed job) and each reprocessed
  version (`speed.<view>__v<N>`, a job of its own). It holds the definition the table's rows are
  computed with (pinned when the table was made, so a version keeps its logic after
  views/<view>.yaml moves on), the shared job that writes a base, when the table was retired,
  the cut-off of a restart of the shared job without it, and when it was dropped.

Why PostgreSQL and not an Iceberg `meta` schema: a step's state changes three times in seconds
and must be read under the same advisory lock that orders the swaps (lambdalake.serving.lock);
row updates in a transaction are what PostgreSQL does, where each Iceberg write is a snapshot.
`lambdalake serving` and `lambdalake serving history VIEW` print them (`--json` too). Trino cannot
read PostgreSQL here, so platform_health copies the steps into the Iceberg table
`meta.serving_steps` (copy_to_lake) for SQL clients; nothing of the platform reads that copy.

Nothing here is parsed out of names: a job is found by the name it was submitted under, and its
restore point is the savepoint or retained checkpoint recorded or found for its last job id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from lambdalake.config import Config
from lambdalake.errors import EngineError

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
    -- what the latest submission was restored from: a Flink job id (its retained checkpoint) or
    -- the location of the savepoint `down` took; deleted once the new job has a checkpoint of its own
    restored_from text,
    restores int not null default 0,
    submitted_at timestamptz not null default now()
);
create table if not exists lambdalake_serving_steps (
    id bigserial primary key,
    serving_view text not null,
    -- create: the speed layer alone; batch: a batch run's swap; switch: a reprocessed version goes live
    kind text not null check (kind in ('create', 'batch', 'switch')),
    -- pending until the view is replaced, then live (it stays live in the history once superseded);
    -- failed when Trino refused its statement (the view still serves the live step; see error)
    status text not null check (status in ('pending', 'live', 'failed')),
    view_name text not null,
    -- the reprocessed version it reads; null for the view's base
    version int,
    speed_table text not null,
    batch_table text,
    boundary_before timestamptz,
    boundary timestamptz,
    events_snapshot bigint,
    rows_written bigint,
    airflow_run_id text,
    -- the statement that replaces the view: what a pending step re-runs
    sql text not null,
    started_at timestamptz not null,
    live_at timestamptz,
    seconds double precision,
    -- when its batch table was dropped (a later run, or its version's retirement)
    dropped_at timestamptz
);
create index if not exists lambdalake_serving_steps_view on lambdalake_serving_steps (serving_view, id);
-- a batch step's run (lambdalake.batch.BatchRun): full or incremental, why, and what it recomputed
alter table lambdalake_serving_steps add column if not exists run_mode text;
alter table lambdalake_serving_steps add column if not exists run_reason text;
alter table lambdalake_serving_steps add column if not exists horizon_seconds int;
alter table lambdalake_serving_steps add column if not exists ingest_from timestamptz;
alter table lambdalake_serving_steps add column if not exists slices int;
alter table lambdalake_serving_steps add column if not exists buckets_recomputed bigint;
alter table lambdalake_serving_steps add column if not exists buckets_first timestamptz;
alter table lambdalake_serving_steps add column if not exists buckets_last timestamptz;
alter table lambdalake_serving_steps add column if not exists error text;
-- stores made before the status 'failed' existed
do $$ begin
    if exists (select from pg_constraint where conname = 'lambdalake_serving_steps_status_check'
               and pg_get_constraintdef(oid) not like '%failed%') then
        alter table lambdalake_serving_steps drop constraint lambdalake_serving_steps_status_check;
        alter table lambdalake_serving_steps add constraint lambdalake_serving_steps_status_check
            check (status in ('pending', 'live', 'failed'));
    end if;
end $$;
create table if not exists lambdalake_speed_tables (
    table_name text primary key,
    -- the Iceberg table's uuid: a table dropped and made again under the same name is another table
    table_uuid text not null,
    view_name text not null,
    -- the reprocessed version it holds; null for the view's base
    version int,
    -- the view definition its rows are computed with
    definition jsonb not null,
    -- a base's writer: the shared speed job (lambdalake.speed.SpeedTarget)
    speed_job jsonb,
    -- a retired base: the cut-off of the shared job's restart without it, to resume an interrupted one
    restart_cutoff timestamptz,
    created_at timestamptz not null default now(),
    -- when serving stopped reading it; the table is dropped a grace period (and the history retention) later
    retired_at timestamptz,
    dropped_at timestamptz
);
create index if not exists lambdalake_speed_tables_view on lambdalake_speed_tables (view_name);
create table if not exists lambdalake_imports (
    topic text not null,
    sha256 text not null,
    -- under the import root, as first imported (the same content under another path is this file)
    path text not null,
    -- sending: its chunks are being sent (rows_committed: the rows the log holds); sent: all, with its counts
    status text not null check (status in ('sending', 'sent')),
    rows_committed bigint,
    event_time_from timestamptz,
    event_time_to timestamptz,
    records bigint,
    accepted bigint,
    rejected bigint,
    skipped bigint,
    rejected_by_reason jsonb,
    seconds double precision,
    started_at timestamptz not null default now(),
    sent_at timestamptz,
    primary key (topic, sha256)
);
alter table lambdalake_imports add column if not exists rows_committed bigint;
create table if not exists lambdalake_counted_copies (
    -- the Iceberg table that holds them (lambdalake.batch.counted_table); each run replaces its rows
    table_name text primary key,
    events_table text not null,
    events_snapshot bigint not null,
    boundary timestamptz not null,
    horizon_seconds int not null,
    -- the ingest-time start of the copies judged (an incremental run); null: every copy below B
    ingest_from timestamptz,
    -- the snapshot of table_name that holds them: a reader reads it, whatever a later run wrote since
    table_snapshot bigint not null,
    -- the master dataset's columns it kept: those its views read
    columns text[] not null,
    slices int not null,
    rows bigint,
    seconds double precision,
    written_at timestamptz not null default now()
);
create table if not exists lambdalake_serving (
    serving_view text primary key,
    step_id bigint not null references lambdalake_serving_steps (id),
    view_name text not null,
    version int,
    speed_table text not null,
    batch_table text,
    boundary timestamptz,
    events_snapshot bigint,
    live_since timestamptz not null
);
"""


#: the advisory lock that puts the state tables' DDL of concurrent processes one after another
SCHEMA_LOCK = 0x1A4BDA1A
#: the databases whose state tables this process has put in place
_SCHEMA_READY: set[tuple[str, int, str]] = set()


def connect(config: Config):  # type: ignore[no-untyped-def]
    """A psycopg connection to the catalog's database, with the state tables in place.

    The DDL runs once per process, in one transaction under an advisory lock: run unordered, two
    processes deadlocked (each held the lock `create index if not exists` takes on the steps table,
    and `alter table` wanted it exclusively), as platform_health's tasks and a test did in CI.
    """
    from lambdalake.engines.postgres import Postgres

    database = config.postgres.catalog_database
    connection = Postgres(config).connect(database)
    key = (config.address('postgres'), config.postgres.port, database)
    if key not in _SCHEMA_READY:
        # one explicit transaction: the connection autocommits, and a transaction-level lock taken
        # by a statement of its own is released before the DDL starts
        with connection.transaction():
            connection.execute("select pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            connection.execute(SCHEMA)
        _SCHEMA_READY.add(key)
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


def set_expected(config: Config, name: str, expected: bool) -> None:
    """Whether the keeper keeps the job running; cleared before the platform stops a job itself."""
    with connect(config) as connection:
        connection.execute("update lambdalake_jobs set expected = %s where name = %s", (expected, name))


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


# --- serving views ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One replacement of a serving view (lambdalake_serving_steps)."""

    id: int
    serving_view: str
    kind: str
    status: str
    view_name: str
    version: int | None
    speed_table: str
    batch_table: str | None
    boundary_before: datetime | None
    boundary: datetime | None
    events_snapshot: int | None
    rows_written: int | None
    airflow_run_id: str | None
    sql: str
    started_at: datetime
    live_at: datetime | None
    seconds: float | None
    dropped_at: datetime | None
    #: a batch step's run (BatchRun's fields); None for other steps
    run_mode: str | None = None
    run_reason: str | None = None
    horizon_seconds: int | None = None
    ingest_from: datetime | None = None
    slices: int | None = None
    buckets_recomputed: int | None = None
    buckets_first: datetime | None = None
    buckets_last: datetime | None = None


@dataclass(frozen=True)
class BatchRun:
    """What a batch run recomputed, and why (recorded with its step)."""

    #: 'full': every copy below B; 'incremental': the copies ingested from ingest_from on, added
    #: to the previous batch table
    run_mode: str
    run_reason: str
    #: the dedup horizon it applied (an incremental run needs the previous run's)
    horizon_seconds: int
    #: the ingest-time start of the copies it counted; None for a full run
    ingest_from: datetime | None
    #: event_id slices its dedup was split into
    slices: int
    #: the event-time buckets it recomputed (an incremental run carries the others over); None: all
    buckets_recomputed: int | None = None
    buckets_first: datetime | None = None
    buckets_last: datetime | None = None


_RUN_COLUMNS = [f.name for f in fields(BatchRun)]
_STEP_COLUMNS = ", ".join(f.name for f in fields(Step))


def begin_step(config: Config, serving_view: str, kind: str, view_name: str, version: int | None, speed_table: str,
               batch_table: str | None, boundary: datetime | None, events_snapshot: int | None,
               rows_written: int | None, airflow_run_id: str | None, sql: str, started_at: datetime,
               run: BatchRun | None = None) -> Step:
    """Record a step as pending, before the view is replaced; B before is what is live now."""
    run_values = [getattr(run, name) for name in _RUN_COLUMNS] if run else [None] * len(_RUN_COLUMNS)
    with connect(config) as connection:
        row = connection.execute(
            "insert into lambdalake_serving_steps (serving_view, kind, status, view_name, version, speed_table, "
            "batch_table, boundary_before, boundary, events_snapshot, rows_written, airflow_run_id, sql, started_at, "
            f"{', '.join(_RUN_COLUMNS)}) "
            "values (%s, %s, 'pending', %s, %s, %s, %s, "
            "(select boundary from lambdalake_serving where serving_view = %s), %s, %s, %s, %s, %s, %s, "
            f"{', '.join(['%s'] * len(_RUN_COLUMNS))}) "
            f"returning {_STEP_COLUMNS}",
            (serving_view, kind, view_name, version, speed_table, batch_table, serving_view, boundary,
             events_snapshot, rows_written, airflow_run_id, sql, started_at, *run_values)).fetchone()
        return Step(*row)


def step_live(config: Config, step_id: int) -> None:
    """The view was replaced by the step's statement: mark it live and make it what the view serves, at once."""
    with connect(config) as connection, connection.transaction():
        connection.execute("update lambdalake_serving_steps set status = 'live', live_at = now(), "
                           "seconds = extract(epoch from now() - started_at) where id = %s", (step_id,))
        connection.execute(
            "insert into lambdalake_serving (serving_view, step_id, view_name, version, speed_table, batch_table, "
            "boundary, events_snapshot, live_since) "
            "select serving_view, id, view_name, version, speed_table, batch_table, boundary, events_snapshot, live_at "
            "from lambdalake_serving_steps where id = %s "
            "on conflict (serving_view) do update set step_id = excluded.step_id, view_name = excluded.view_name, "
            "version = excluded.version, speed_table = excluded.speed_table, batch_table = excluded.batch_table, "
            "boundary = excluded.boundary, events_snapshot = excluded.events_snapshot, "
            "live_since = excluded.live_since", (step_id,))


def step_failed(config: Config, step_id: int, error: str) -> None:
    """Trino refused the step's statement: the view was not replaced, and the step never will be."""
    with connect(config) as connection:
        connection.execute("update lambdalake_serving_steps set status = 'failed', error = %s where id = %s",
                           (error, step_id))


def live_step(config: Config, serving_view: str) -> Step | None:
    """The step serving_view answers from now; None before it was first created."""
    with connect(config) as connection:
        row = connection.execute(
            f"select {', '.join('s.' + f.name for f in fields(Step))} from lambdalake_serving v "
            "join lambdalake_serving_steps s on s.id = v.step_id where v.serving_view = %s",
            (serving_view,)).fetchone()
        return None if row is None else Step(*row)


def step_live_at(config: Config, serving_view: str, instant: datetime) -> Step | None:
    """The step serving_view answered from at the instant: the last marked live at or before it."""
    with connect(config) as connection:
        row = connection.execute(
            f"select {_STEP_COLUMNS} from lambdalake_serving_steps where serving_view = %s and status = 'live' "
            "and live_at <= %s order by live_at desc, id desc limit 1", (serving_view, instant)).fetchone()
        return None if row is None else Step(*row)


def live_steps(config: Config) -> list[Step]:
    """The step each serving view answers from now, by view."""
    with connect(config) as connection:
        return [Step(*row) for row in connection.execute(
            f"select {', '.join('s.' + f.name for f in fields(Step))} from lambdalake_serving v "
            "join lambdalake_serving_steps s on s.id = v.step_id order by v.serving_view")]


def steps(config: Config, serving_view: str, *, status: str | None = None) -> list[Step]:
    """The view's steps, newest first (only those with the status, if given)."""
    with connect(config) as connection:
        where, args = "serving_view = %s", [serving_view]
        if status is not None:
            where += " and status = %s"
            args.append(status)
        return [Step(*row) for row in connection.execute(
            f"select {_STEP_COLUMNS} from lambdalake_serving_steps where {where} order by id desc", args)]


def batch_table_dropped(config: Config, step_id: int) -> None:
    with connect(config) as connection:
        connection.execute("update lambdalake_serving_steps set dropped_at = now() where id = %s", (step_id,))


def forget_serving(config: Config, serving_view: str) -> None:
    """The view was dropped (a test's or a bench's): its state and history go with it."""
    with connect(config) as connection, connection.transaction():
        connection.execute("delete from lambdalake_serving where serving_view = %s", (serving_view,))
        connection.execute("delete from lambdalake_serving_steps where serving_view = %s", (serving_view,))


# --- speed tables: the versions of each view --------------------------------------------------

@dataclass(frozen=True)
class CountedCopies:
    """The copies that count, as a batch run judged them once for all its views (lambdalake_counted_copies)."""

    table_name: str
    events_table: str
    events_snapshot: int
    boundary: datetime
    horizon_seconds: int
    #: the ingest-time start of the copies judged; None: every copy below B
    ingest_from: datetime | None
    #: the snapshot of table_name that holds them
    table_snapshot: int
    #: the master dataset's columns it kept (those its views read)
    columns: list[str]
    slices: int
    rows: int | None
    seconds: float | None


_COUNTED_COLUMNS = [f.name for f in fields(CountedCopies)]


def counted_copies_written(config: Config, counted: CountedCopies) -> None:
    """Record where the latest run of its master dataset wrote the copies that count (replacing the record)."""
    values = [getattr(counted, name) for name in _COUNTED_COLUMNS]
    with connect(config) as connection:
        connection.execute(
            f"insert into lambdalake_counted_copies ({', '.join(_COUNTED_COLUMNS)}) values "
            f"({', '.join('%s' for _ in _COUNTED_COLUMNS)}) on conflict (table_name) do update set "
            + ", ".join(f"{name} = excluded.{name}" for name in _COUNTED_COLUMNS[1:]) + ", written_at = now()",
            values)


def counted_copies(config: Config, table_name: str) -> CountedCopies | None:
    """The recorded counted copies in table_name; None when no run wrote them (or they were forgotten)."""
    with connect(config) as connection:
        row = connection.execute(f"select {', '.join(_COUNTED_COLUMNS)} from lambdalake_counted_copies "
                                 "where table_name = %s", (table_name,)).fetchone()
        return None if row is None else CountedCopies(*row)


def forget_counted_copies(config: Config, table_name: str) -> None:
    """The table was dropped: forget what it held."""
    with connect(config) as connection:
        connection.execute("delete from lambdalake_counted_copies where table_name = %s", (table_name,))


@dataclass(frozen=True)
class SpeedTable:
    """A speed table the platform made (lambdalake_speed_tables)."""

    table_name: str
    table_uuid: str
    view_name: str
    #: the reprocessed version it holds; None for the view's base
    version: int | None
    #: the view definition its rows are computed with
    definition: dict[str, Any]
    #: a base's writer: the shared speed job's SpeedTarget fields
    speed_job: dict[str, Any] | None
    restart_cutoff: datetime | None
    created_at: datetime
    retired_at: datetime | None
    dropped_at: datetime | None


_SPEED_TABLE_COLUMNS = ", ".join(f.name for f in fields(SpeedTable))


def pin_speed_table(config: Config, table_name: str, table_uuid: str, view_name: str, version: int | None,
                    definition: dict[str, Any]) -> SpeedTable:
    """Record the speed table with the definition it is made for, unless it is recorded already;
    return what is recorded (a table made again under the same name starts a new record)."""
    with connect(config) as connection, connection.transaction():
        connection.execute(
            "insert into lambdalake_speed_tables (table_name, table_uuid, view_name, version, definition) "
            "values (%s, %s, %s, %s, %s::jsonb) on conflict (table_name) do update set "
            "table_uuid = excluded.table_uuid, view_name = excluded.view_name, version = excluded.version, "
            "definition = excluded.definition, speed_job = null, restart_cutoff = null, created_at = now(), "
            "retired_at = null, dropped_at = null "
            "where lambdalake_speed_tables.table_uuid <> excluded.table_uuid",
            (table_name, table_uuid, view_name, version, json.dumps(definition, sort_keys=True)))
        row = connection.execute(f"select {_SPEED_TABLE_COLUMNS} from lambdalake_speed_tables where table_name = %s",
                                 (table_name,)).fetchone()
        return SpeedTable(*row)


def speed_table(config: Config, table_name: str, *, dropped: bool = False) -> SpeedTable | None:
    """The recorded speed table (also once dropped, with dropped); None when there is none."""
    with connect(config) as connection:
        row = connection.execute(
            f"select {_SPEED_TABLE_COLUMNS} from lambdalake_speed_tables where table_name = %s"
            + ("" if dropped else " and dropped_at is null"), (table_name,)).fetchone()
        return None if row is None else SpeedTable(*row)


def version_tables(config: Config, view_name: str) -> list[SpeedTable]:
    """The view's reprocessed versions whose tables are not dropped, oldest first."""
    with connect(config) as connection:
        return [SpeedTable(*row) for row in connection.execute(
            f"select {_SPEED_TABLE_COLUMNS} from lambdalake_speed_tables where view_name = %s "
            "and version is not null and dropped_at is null order by version", (view_name,))]


def set_speed_job(config: Config, table_name: str, speed_job: dict[str, Any]) -> None:
    """The shared speed job that writes the base table now."""
    with connect(config) as connection:
        connection.execute("update lambdalake_speed_tables set speed_job = %s::jsonb where table_name = %s",
                           (json.dumps(speed_job, sort_keys=True), table_name))


def set_restart_cutoff(config: Config, table_name: str, cutoff: datetime) -> None:
    with connect(config) as connection:
        connection.execute("update lambdalake_speed_tables set restart_cutoff = %s where table_name = %s",
                           (cutoff, table_name))


def retire_speed_table(config: Config, table_name: str) -> datetime:
    """Mark the table retired (once); return when it was."""
    with connect(config) as connection:
        row = connection.execute("update lambdalake_speed_tables set retired_at = coalesce(retired_at, now()) "
                                 "where table_name = %s returning retired_at", (table_name,)).fetchone()
        if row is None:
            raise EngineError(f"{table_name} is not a speed table the platform made (lambdalake_speed_tables): "
                              "nothing to retire")
        return row[0]


def speed_table_dropped(config: Config, table_name: str) -> None:
    with connect(config) as connection:
        connection.execute("update lambdalake_speed_tables set dropped_at = coalesce(dropped_at, now()) "
                           "where table_name = %s", (table_name,))


def forget_speed_tables(config: Config, view_name: str) -> None:
    """The view's speed tables were dropped with it (a test's or a bench's view): forget them."""
    with connect(config) as connection:
        connection.execute("delete from lambdalake_speed_tables where view_name = %s", (view_name,))


# --- a copy for Trino clients -----------------------------------------------------------------

#: the Iceberg copy of lambdalake_serving_steps (iceberg/tables.yaml): Trino has no way to read
#: PostgreSQL here (its connector is not among the artifacts the platform can fetch)
LAKE_COPY = "meta.serving_steps"
_COPIED_COLUMNS = ("id", "serving_view", "kind", "status", "view_name", "version", "speed_table", "batch_table",
                   "boundary_before", "boundary", "events_snapshot", "rows_written", "airflow_run_id", "started_at",
                   "live_at", "seconds", "dropped_at", "run_mode", "run_reason", "slices", "buckets_recomputed")


def copy_to_lake(config: Config, now: datetime) -> int:
    """Rewrite meta.serving_steps with every step in the store, in one Iceberg commit (a reader
    sees the old copy or the new one); return the rows written. The store stays the authority:
    nothing of the platform reads the copy."""
    import pyarrow as pa

    from lambdalake.tables import ensure_table

    with connect(config) as connection:
        rows = connection.execute(
            f"select {', '.join('s.' + c for c in _COPIED_COLUMNS)}, v.step_id is not null "
            "from lambdalake_serving_steps s left join lambdalake_serving v on v.step_id = s.id "
            "order by s.id").fetchall()
    table = ensure_table(config, LAKE_COPY)
    records = [{**dict(zip(_COPIED_COLUMNS, row)), "is_live": row[-1], "copied_at": now} for row in rows]
    table.overwrite(pa.Table.from_pylist(records, schema=table.schema().as_arrow()))
    return len(records)


# --- imported files ---------------------------------------------------------------------------

_IMPORT_COLUMNS = ("topic", "sha256", "path", "status", "rows_committed", "event_time_from", "event_time_to", "records", "accepted",
                   "rejected", "skipped", "rejected_by_reason", "seconds", "started_at", "sent_at")


def file_import(config: Config, topic: str, sha256: str) -> dict[str, Any] | None:
    """What is recorded of the file with this checksum sent to topic, or None."""
    with connect(config) as connection:
        row = connection.execute(f"select {', '.join(_IMPORT_COLUMNS)} from lambdalake_imports "
                                 "where topic = %s and sha256 = %s", (topic, sha256)).fetchone()
    return None if row is None else dict(zip(_IMPORT_COLUMNS, row))


def file_imports(config: Config, topic: str) -> list[dict[str, Any]]:
    with connect(config) as connection:
        rows = connection.execute(f"select {', '.join(_IMPORT_COLUMNS)} from lambdalake_imports where topic = %s "
                                  "order by started_at", (topic,)).fetchall()
    return [dict(zip(_IMPORT_COLUMNS, row)) for row in rows]


def import_sending(config: Config, topic: str, sha256: str, path: str, start: datetime | None,
                   end: datetime | None, rows_committed: int) -> None:
    """A file's chunks are about to be sent, after the rows_committed rows the log already holds."""
    with connect(config) as connection:
        connection.execute(
            "insert into lambdalake_imports (topic, sha256, path, status, rows_committed, event_time_from, "
            "event_time_to) values (%s, %s, %s, 'sending', %s, %s, %s) on conflict (topic, sha256) do update set "
            "path = excluded.path, status = 'sending', rows_committed = excluded.rows_committed, "
            "event_time_from = excluded.event_time_from, event_time_to = excluded.event_time_to, started_at = now()",
            (topic, sha256, path, rows_committed, start, end))


def import_committed(config: Config, topic: str, sha256: str, rows: int) -> None:
    """The log holds the file's records up to row `rows`, committed."""
    with connect(config) as connection:
        connection.execute("update lambdalake_imports set rows_committed = %s where topic = %s and sha256 = %s",
                           (rows, topic, sha256))


def import_sent(config: Config, topic: str, sha256: str, counts: dict[str, Any]) -> None:
    """Every chunk of the file committed; counts: records, accepted, rejected, skipped,
    rejected_by_reason, seconds."""
    with connect(config) as connection:
        connection.execute(
            "update lambdalake_imports set status = 'sent', sent_at = now(), records = %s, accepted = %s, "
            "rejected = %s, skipped = %s, rejected_by_reason = %s::jsonb, seconds = %s where topic = %s and sha256 = %s",
            (counts.get("records"), counts.get("accepted"), counts.get("rejected"), counts.get("skipped"),
             json.dumps(counts.get("rejected_by_reason")), counts.get("seconds"), topic, sha256))


def forget_import(config: Config, topic: str, sha256: str) -> None:
    """A file's first chunk was aborted: nothing of it is in the log."""
    with connect(config) as connection:
        connection.execute("delete from lambdalake_imports where topic = %s and sha256 = %s and status = 'sending'",
                           (topic, sha256))
