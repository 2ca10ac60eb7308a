"""Iceberg table maintenance, run by Trino: compact small files, expire snapshots, remove orphans.

The streaming jobs commit a few files per table on every checkpoint (every 5 s), so without this
a partition collects hundreds of small files an hour. Every operation is safe while the jobs
write: compaction rewrites committed files only (a concurrent append does not conflict with
it), snapshots younger than `[serving] history_retention` are kept (time travel reads them), and only files older
than `[maintenance] orphan_retention` can be removed as orphans, so a file whose commit is
still in flight is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lambdalake.config import TRINO_DURATION, Config, MaintenanceConfig
from lambdalake.errors import ConfigError
from lambdalake.query import run_query
from lambdalake import names

#: the namespaces whose tables are appended to in small commits: by the streaming jobs (raw,
#: speed) and by platform_health (meta)
MAINTAINED_NAMESPACES = ("raw", "speed", "meta")


@dataclass(frozen=True)
class Maintained:
    table: str
    files_before: int
    files_after: int
    largest_partition_before: int
    largest_partition_after: int


def checked_settings(settings: MaintenanceConfig) -> MaintenanceConfig:
    """The settings, once each is a Trino duration or data size (they are put into SQL)."""
    if not TRINO_DURATION.fullmatch(settings.orphan_retention):
        raise ConfigError(f"maintenance.orphan_retention = {settings.orphan_retention!r} is not a duration such as '6h'")
    if not re.fullmatch(r"\d+(\.\d+)?(B|kB|MB|GB)", settings.file_size_threshold):
        raise ConfigError(f"maintenance.file_size_threshold = {settings.file_size_threshold!r} "
                          "is not a size such as '100MB'")
    return settings


def maintained_tables(config: Config) -> list[str]:
    """Every table of MAINTAINED_NAMESPACES."""
    tables = []
    for namespace in MAINTAINED_NAMESPACES:
        _, rows = run_query(config, f"show tables from {names.trino_ident(namespace)}")
        tables += [f"{namespace}.{name}" for (name,) in rows]
    return sorted(tables)


def files_per_partition(config: Config, table: str) -> list[int]:
    """Data files in each partition of the table (one entry for an unpartitioned table)."""
    partitions = names.TableName.parse(table).trino_metadata("partitions")
    _, rows = run_query(config, f"select file_count from {partitions}")
    return [count for (count,) in rows]


def maintain(config: Config, table: str, say: Callable[[str], None] = print) -> Maintained:
    """Compact the table's small files, then expire its old snapshots and remove orphan files."""
    quoted = names.trino_table(table)
    settings = checked_settings(config.maintenance)
    retention = config.serving.checked_history_retention
    before = files_per_partition(config, table)
    run_query(config, f"alter table {quoted} execute optimize(file_size_threshold => '{settings.file_size_threshold}')")
    after = files_per_partition(config, table)
    say(f"{table}: compacted {sum(before)} files in {len(before)} partitions into {sum(after)}")
    run_query(config, f"alter table {quoted} execute expire_snapshots("
                      f"retention_threshold => '{retention}')")
    run_query(config, f"alter table {quoted} execute remove_orphan_files("
                      f"retention_threshold => '{settings.orphan_retention}')")
    say(f"{table}: expired snapshots older than {retention}, "
        f"removed orphan files older than {settings.orphan_retention}")
    return Maintained(table, sum(before), sum(after), max(before, default=0), max(after, default=0))
