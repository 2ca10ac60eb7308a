"""Flink: a session cluster (one JobManager, one or more TaskManagers) from the PyFlink distribution."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lambdalake.catalog import on_object_store
from lambdalake.checkpoints import checkpoints_uri, savepoints_uri
from lambdalake.commands import run
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.engines import Engine, Program, fetch_json
from lambdalake.install import flink_home, flink_venv, jdk17_home

LAKE_SQL_JOB = PROJECT_ROOT / "flink_jobs" / "lake_sql.py"

#: `flink run` is a short-lived JVM that plans one job: the C1 compiler alone and the serial GC
#: cut its CPU time by a third (25.6 s to 16.2 s per PyFlink submission here)
CLIENT_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flink's nested YAML as flat dotted keys, the form Flink also reads, so ours can override."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass(frozen=True)
class FlinkNode:
    """Where one Flink process runs and keeps its state: the embedded cluster's, or a container's."""
    rpc_address: str
    bind_host: str
    advertised_host: str
    checkpoints: str
    savepoints: str
    work_dir: str
    python: str
    jobmanager_memory: str
    taskmanager_memory: str
    task_slots: int


def flink_settings(config: Config, node: FlinkNode) -> dict[str, Any]:
    """The settings lambdalake puts over Flink's shipped config.yaml: what `up` writes for its cluster
    and `lambdalake compose` gives the cluster's JobManager and TaskManagers."""
    flink = config.flink
    ports = flink.internal_port_range
    internal = f"{ports.start}-{ports.stop - 1}"
    return {
        "jobmanager.rpc.address": node.rpc_address,
        "jobmanager.rpc.port": flink.rpc_port,
        # every other server's port from one range (Flink's defaults are random ports): each takes
        # the first free one, so the TaskManagers of one host do not collide
        "blob.server.port": internal,
        "taskmanager.rpc.port": internal,
        "taskmanager.data.bind-port": internal,
        "metrics.internal.query-service.port": internal,
        "jobmanager.bind-host": node.bind_host,
        "jobmanager.memory.process.size": node.jobmanager_memory,
        "taskmanager.host": node.advertised_host,
        "taskmanager.bind-host": node.bind_host,
        "taskmanager.numberOfTaskSlots": node.task_slots,
        "taskmanager.memory.process.size": node.taskmanager_memory,
        "taskmanager.memory.task.off-heap.size": flink.task_off_heap,
        "taskmanager.memory.jvm-metaspace.size": flink.taskmanager_metaspace,
        "rest.address": node.advertised_host,
        "rest.bind-address": node.bind_host,
        "rest.port": flink.rest_port,
        "parallelism.default": 1,
        "execution.checkpointing.interval": flink.checkpoint_interval,
        "heartbeat.timeout": flink.heartbeat_timeout,
        # the speed job remembers every event_id for [dedup] horizon: millions of keys, which
        # on the heap backend filled the TaskManager's heap (back-to-back full GCs at ~600K keys
        # in bench/streaming.py). RocksDB keeps them in managed memory and on disk.
        "state.backend.type": "rocksdb",
        # a bloom filter in every RocksDB file: the dedup looks up several states of each new
        # event_id, absent from every file, and without filters each lookup reads every level
        # (speed job, 300K events: 7.9K -> 19.3K events/s; BENCHMARKS.md, issue 17)
        "state.backend.rocksdb.use-bloom-filter": True,
        # no compression in levels 0 and 1, Snappy below: each checkpoint flushes the memtable to
        # level 0 on the task thread, and the dedup's fresh keys are rewritten again and again in
        # levels 0-1 before they settle (speed job, 2M events, medians of 3 back
        # to back: 11.3K -> 16.4K events/s; state 114-122 -> 175-190 MiB per 1M ids; BENCHMARKS.md)
        "state.backend.rocksdb.compression.per.level": "NO_COMPRESSION;NO_COMPRESSION;SNAPPY_COMPRESSION",
        "execution.checkpointing.incremental": True,
        "execution.checkpointing.dir": node.checkpoints,
        "execution.checkpointing.savepoint-dir": node.savepoints,
        # keep the last checkpoint when a job is cancelled: it can be restarted from it
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": flink.retained_checkpoints,
        # the Flink UI's flame graphs (sampled JVM stacks) and profiler (native code too, such
        # as RocksDB), on for users and for profiling the jobs
        "rest.flamegraph.enabled": True,
        "rest.profiling.enabled": True,
        "rest.profiling.dir": f"{node.work_dir}/profiling",
        "metrics.fetcher.update-interval": flink.metrics_fetcher_interval_ms,
        "io.tmp.dirs": f"{node.work_dir}/tmp",
        "env.java.opts.client": CLIENT_JAVA_OPTS,
        **({"env.java.opts.jobmanager": config.java.engine_opts, "env.java.opts.taskmanager": config.java.engine_opts}
           if config.java.engine_opts else {}),
        "python.executable": node.python,
        "python.client.executable": node.python,
        # checkpoints and savepoints on the object store, through Flink's S3 file system plugin
        **({"s3.endpoint": config.storage.s3_endpoint, "s3.path.style.access": config.storage.s3_path_style,
            "s3.access-key": config.storage.s3_access_key, "s3.secret-key": config.storage.s3_secret_key}
           if on_object_store(config) else {}),
    }


def client_archive_path(config: Config) -> Path:
    """Where the class-data-sharing archive of `flink run`'s JVM is kept, shared by every clone: named
    by the JDK and every jar of the Flink distribution (name, size, time), so that a changed one
    gets a new archive (the JVM would only ignore the stale one, with a warning)."""
    home, java = flink_home(config), jdk17_home(config)
    digest = hashlib.sha256((java / "release").read_bytes() if (java / "release").exists() else str(java).encode())
    for jar in sorted([*(home / "lib").glob("*.jar"), *(home / "opt").glob("*.jar")]):
        stat = jar.stat()
        digest.update(f"{jar.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return config.cache_dir / "flink-client-cds" / f"{digest.hexdigest()[:16]}.jsa"


@contextmanager
def client_archive(path: Path, stale_lock_seconds: float = 600) -> Iterator[str]:
    """The JVM options that make one `flink run` share classes through the archive at path (CDS).

    `flink run` spends most of its ~10 s loading and linking the same classes every time; with the
    archive it takes ~7 s and a third less CPU (issue 19, measured with an ingest job). The first
    run without an archive writes it when its JVM exits (~10 s more, once); the runs meanwhile go
    without. The archive is kept only when that run succeeded.
    """
    if path.exists():
        yield f"-XX:SharedArchiveFile={path}"
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_suffix(".lock")
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # another run writes it; one that died leaves its lock behind
        try:
            if time.time() - lock.stat().st_mtime > stale_lock_seconds:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        yield ""
        return
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    try:
        yield f"-XX:ArchiveClassesAtExit={partial}"
        if partial.exists() and partial.stat().st_size > 0:
            partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


class Flink(Engine):
    """A session cluster: one JobManager and the profile's TaskManagers (one, or [cluster]
    flink_taskmanagers), with the job keeper."""

    name = "flink"

    @property
    def taskmanagers(self) -> tuple[str, ...]:
        count = self.config.flink_taskmanagers
        return ("flink-taskmanager",) if not self.config.clustered else tuple(
            f"flink-taskmanager-{n}" for n in range(1, count + 1))

    @property
    def program_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("flink-jobmanager", *self.taskmanagers, "flink-keeper")

    @property
    def conf_dir(self) -> Path:
        return self.state_dir / "conf"

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.address('flink')}:{self.config.flink.rest_port}"

    def environment(self) -> dict[str, str]:
        """What Flink's scripts (cluster and `flink run`) need: JDK 17, our conf and log dirs."""
        return {
            "JAVA_HOME": str(jdk17_home(self.config)),
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LOG_DIR": str(self.config.logs_dir / "flink"),
        }

    def flink_bin(self) -> Path:
        return flink_home(self.config) / "bin"

    def programs(self) -> list[Program]:
        bin_dir, env = self.flink_bin(), self.environment()
        return [
            Program("flink-jobmanager", [str(bin_dir / "jobmanager.sh"), "start-foreground"], env),
            *(Program(name, [str(bin_dir / "taskmanager.sh"), "start-foreground"], env) for name in self.taskmanagers),
            # brings back every job the platform expects to run (lambdalake.keeper)
            Program("flink-keeper", [sys.executable, "-m", "lambdalake.keeper"], stop_wait_seconds=5),
        ]

    def ports(self) -> dict[int, str]:
        return {self.config.flink.rest_port: "flink.rest_port", self.config.flink.rpc_port: "flink.rpc_port"}

    def endpoint(self) -> str:
        return self.rest_url

    def prepare(self) -> None:
        flink = self.config.flink
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.config.logs_dir / "flink").mkdir(parents=True, exist_ok=True)
        shipped = flink_home(self.config) / "conf"
        for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties"):
            shutil.copyfile(shipped / name, self.conf_dir / name)
        python = str(flink_venv(self.config) / "bin" / "python")
        host, cluster = self.config.host, self.config.cluster
        sizes = ((cluster.jobmanager_memory, cluster.taskmanager_memory, cluster.taskmanager_slots)
                 if self.config.clustered else (flink.jobmanager_memory, flink.taskmanager_memory, flink.task_slots))
        settings = flink_settings(self.config, FlinkNode(
            rpc_address=host, bind_host=host, advertised_host=host, checkpoints=checkpoints_uri(self.config),
            savepoints=savepoints_uri(self.config), work_dir=str(self.state_dir), python=python,
            jobmanager_memory=sizes[0], taskmanager_memory=sizes[1], task_slots=sizes[2]))
        (self.state_dir / "tmp").mkdir(exist_ok=True)
        (self.state_dir / "profiling").mkdir(exist_ok=True)
        # start from Flink's shipped config: it carries the JVM --add-opens flags Flink needs
        merged = {**_flatten(yaml.safe_load((shipped / "config.yaml").read_text())), **settings}
        header = "# written by lambdalake: Flink's shipped config.yaml + lambdalake.toml; edits are overwritten\n"
        (self.conf_dir / "config.yaml").write_text(header + yaml.safe_dump(merged, sort_keys=True, width=10_000))

    def probe(self) -> str | None:
        overview = fetch_json(f"{self.rest_url}/overview")
        registered, expected = overview.get("taskmanagers", 0), len(self.taskmanagers)
        return None if registered >= expected else f"{registered} of {expected} TaskManagers registered"

    def run_python_job(self, job: Path, *args: str, detached: bool = False, parallelism: int | None = None,
                       savepoint: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`flink run -py JOB ARGS` against the session cluster; raises EngineError on failure."""
        cmd = [str(self.flink_bin() / "flink"), "run", "-m", f"{self.config.address('flink')}:{self.config.flink.rest_port}"]
        if detached:
            cmd.append("--detached")
        if parallelism is not None:
            cmd += ["-p", str(parallelism)]
        if savepoint is not None:
            cmd += ["-s", savepoint]
        cmd += ["-py", str(job), *args]
        with client_archive(client_archive_path(self.config)) as sharing:
            env = {**os.environ, **self.environment(), "FLINK_ENV_JAVA_OPTS_CLI": f"{CLIENT_JAVA_OPTS} {sharing}".strip()}
            return run(cmd, f"flink run -py {job.name}", env=env, timeout=timeout)

    def sql(self, *statements: str) -> tuple[list[str], list[list[Any]]]:
        """Run Flink SQL on the cluster through flink_jobs/lake_sql.py; the last query's result."""
        proc = self.run_python_job(LAKE_SQL_JOB, *statements)
        columns: list[str] = []
        rows: list[list[Any]] = []
        for line in proc.stdout.splitlines():
            if line.startswith('{"columns"'):
                columns, rows = json.loads(line)["columns"], []
            elif line.startswith('{"row"'):
                rows.append(json.loads(line)["row"])
        return columns, rows
