"""Where Flink keeps the jobs' state: checkpoints and savepoints, on the local disk (the single
profile) or on the object store beside the warehouse (an `s3://` warehouse).

The platform names a job's state by a Flink job id (the checkpoints retained under it) or by a
savepoint's location (a `file:` or `s3:` URI, as Flink reports it). This module reads and deletes
both, through pyarrow's file systems, so the keeper, `down` and `cancel` work the same on either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambdalake.catalog import on_object_store, warehouse_uri
from lambdalake.config import Config

if TYPE_CHECKING:  # pyarrow is imported where it is used: the jobs' venv imports this module too
    from pyarrow import fs


def state_uri(config: Config) -> str:
    """The directory holding Flink's checkpoints/ and savepoints/: the bucket of an `s3://`
    warehouse, else <data_dir>/flink."""
    if on_object_store(config):
        bucket = warehouse_uri(config).removeprefix("s3://").split("/", 1)[0]
        return f"s3://{bucket}/flink"
    return f"file://{config.data_dir / 'flink'}"


def checkpoints_uri(config: Config) -> str:
    return f"{state_uri(config)}/checkpoints"


def savepoints_uri(config: Config) -> str:
    return f"{state_uri(config)}/savepoints"


def is_location(ref: str) -> bool:
    """Whether a state reference is a savepoint's location (a URI), not a Flink job id."""
    return ":" in ref


def s3_filesystem(config: Config, *, allow_bucket_creation: bool = False) -> fs.S3FileSystem:
    """The object store of [storage]: its endpoint, region and keys."""
    from pyarrow import fs

    s3 = config.storage
    scheme, _, address = s3.s3_endpoint.partition("://")
    return fs.S3FileSystem(access_key=s3.s3_access_key, secret_key=s3.s3_secret_key, region=s3.s3_region,
                           endpoint_override=address or s3.s3_endpoint, scheme=scheme if address else "https",
                           force_virtual_addressing=not s3.s3_path_style, allow_bucket_creation=allow_bucket_creation,
                           connect_timeout=5, request_timeout=10)


def _filesystem(config: Config, uri: str) -> tuple[fs.FileSystem, str]:
    """The file system and path of a `file:` or `s3:` URI (s3 through [storage]'s endpoint and keys)."""
    from pyarrow import fs

    if uri.split(":", 1)[0] in ("s3", "s3a", "s3p"):
        return s3_filesystem(config), uri.split("://", 1)[1] if "://" in uri else uri.split(":", 1)[1]
    path = uri.removeprefix("file://") if uri.startswith("file://") else uri.removeprefix("file:")
    return fs.LocalFileSystem(), path


def latest_checkpoint(config: Config, job_id: str) -> str | None:
    """The newest complete checkpoint (one with its _metadata) retained under a Flink job id, as a URI.

    Lists the job's directory only, not the shared RocksDB files beside the checkpoints: the keeper
    asks this of every expected job on each pass."""
    from pyarrow import fs

    filesystem, root = _filesystem(config, checkpoints_uri(config))
    try:
        entries = filesystem.get_file_info(fs.FileSelector(f"{root}/{job_id}", allow_not_found=True))
    except OSError:
        return None
    numbers = sorted((int(info.base_name.split("-", 1)[1]) for info in entries
                      if info.base_name.startswith("chk-") and info.base_name[4:].isdigit()), reverse=True)
    for number in numbers:  # the newest may still be being written, without its _metadata
        if filesystem.get_file_info(f"{root}/{job_id}/chk-{number}/_metadata").type == fs.FileType.File:
            return f"{checkpoints_uri(config)}/{job_id}/chk-{number}"
    return None


def remove(config: Config, ref: str | None) -> None:
    """Delete a job's state that nothing restores from any more: the checkpoints retained under a
    Flink job id, or a savepoint the platform took (one under its savepoints directory; others are
    the user's, and are left alone)."""
    if not ref:
        return
    if is_location(ref):
        filesystem, path = _filesystem(config, ref)
        _, savepoints = _filesystem(config, savepoints_uri(config))
        if not path.rstrip("/").startswith(savepoints.rstrip("/") + "/") or ".." in path.split("/"):
            return
    else:
        filesystem, root = _filesystem(config, checkpoints_uri(config))
        path = f"{root}/{ref}"
    try:
        filesystem.delete_dir(path)
    except (FileNotFoundError, OSError):
        pass
