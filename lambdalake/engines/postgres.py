"""PostgreSQL: the Iceberg JDBC catalog and Airflow's metadata database."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
from pathlib import Path

from lambdalake.catalog import ensure_catalog
from lambdalake.commands import run
from lambdalake.engines import Engine, Program
from lambdalake.errors import SetupError
from lambdalake.install import postgres_bin_dir

#: PostgreSQL refuses to run as root; as root we run it as Debian's `postgres` user
SERVICE_USER = "postgres"
#: where its state goes when that user cannot reach the data dir (e.g. a clone in a 0700 dir)
FALLBACK_ROOT = Path("/var/lib/lambdalake")


def _as_root() -> bool:
    return os.geteuid() == 0


def reachable_by(user: str, path: Path) -> bool:
    """Whether `user` can traverse every existing directory from / down to path."""
    uid = pwd.getpwnam(user).pw_uid
    for directory in [path, *path.parents]:
        if not directory.exists():
            continue
        info = directory.stat()
        if not (info.st_mode & stat.S_IXOTH or (info.st_uid == uid and info.st_mode & stat.S_IXUSR)):
            return False
    return True


class Postgres(Engine):
    name = "postgres"
    storage = True
    program_names = ("postgres",)

    @property
    def state_dir(self) -> Path:
        preferred = self.config.data_dir / self.name
        if not _as_root() or reachable_by(SERVICE_USER, self.config.data_dir):
            return preferred
        key = hashlib.sha256(str(self.config.data_dir).encode()).hexdigest()[:12]
        return FALLBACK_ROOT / key / self.name

    @property
    def pgdata(self) -> Path:
        return self.state_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.state_dir / "socket"

    def _bin(self, tool: str) -> str:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise SetupError("PostgreSQL server binaries are missing: run `lambdalake setup`")
        return str(bin_dir / tool)

    def programs(self) -> list[Program]:
        return [Program(
            name="postgres",
            command=[self._bin("postgres"), "-D", str(self.pgdata), "-p", str(self.config.postgres.port),
                     "-k", str(self.socket_dir), "-c", f"listen_addresses={self.config.host}"],
            user=SERVICE_USER if _as_root() else None,
            stop_wait_seconds=30,
            # a fast shutdown: SIGTERM's smart one waits for every client to disconnect (a user's
            # psql, a test's pool), and in CI it was SIGKILLed after 30 s on every `down`
            stop_signal="INT",
        )]

    def ports(self) -> dict[int, str]:
        return {self.config.postgres.port: "postgres.port"}

    def endpoint(self) -> str:
        pg = self.config.postgres
        return f"postgresql://{pg.user}@{self.config.host}:{pg.port}"

    def _run_as_owner(self, cmd: list[str], what: str) -> None:
        run(["runuser", "-u", SERVICE_USER, "--", *cmd] if _as_root() else cmd, f"postgres: {what}")

    def prepare(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if _as_root():
            shutil.chown(self.state_dir, SERVICE_USER, SERVICE_USER)
            shutil.chown(self.socket_dir, SERVICE_USER, SERVICE_USER)
            link = self.config.data_dir / self.name
            if self.state_dir != link and not link.is_symlink():
                # state outside the data dir: leave a pointer where people look for it
                link.symlink_to(self.state_dir)
        if (self.pgdata / "PG_VERSION").exists():
            return
        pwfile = self.state_dir / "initdb.pw"
        pwfile.write_text(self.config.postgres.password + "\n")
        if _as_root():
            shutil.chown(pwfile, SERVICE_USER, SERVICE_USER)
        try:
            self._run_as_owner([self._bin("initdb"), "-D", str(self.pgdata), "-U", self.config.postgres.user,
                                f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                                "-E", "UTF8", "--locale=C.UTF-8"], "initdb")
        finally:
            pwfile.unlink(missing_ok=True)

    def connect(self, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
        import psycopg

        pg = self.config.postgres
        return psycopg.connect(host=self.config.address('postgres'), port=pg.port, user=pg.user, password=pg.password,
                               dbname=dbname, connect_timeout=3, autocommit=True)

    def probe(self) -> str | None:
        with self.connect() as conn:
            conn.execute("select 1")
        return None

    def initialize(self) -> None:
        from psycopg import sql

        pg = self.config.postgres
        with self.connect() as conn:
            existing = {row[0] for row in conn.execute("select datname from pg_database")}
            for database in (pg.catalog_database, pg.airflow_database):
                if database not in existing:
                    conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
        # Trino never creates the JDBC catalog's tables: pyiceberg does, before Trino starts
        ensure_catalog(self.config)
