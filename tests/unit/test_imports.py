"""History files: which paths may be read, and how a file's rows become the records a producer sends."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdalake.config import Config, PathsConfig
from lambdalake.events import Accepted, validate
from lambdalake.imports import ImportFileError, import_file, read_records, resolve_files

EVENT = {"event_id": "5f0c6d4e-8a55-4c1e-9d84-2a7b6a1f3c11", "user_id": "u-1", "session_id": "s-1",
         "event_type": "purchase", "page": "/checkout", "product_id": "p-1", "amount": 19.9,
         "event_time": "2024-02-29T10:00:00+00:00"}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    root = tmp_path / "import"
    (root / "2024").mkdir(parents=True)
    return dataclasses.replace(Config(), paths=PathsConfig(data_dir=tmp_path, cache_dir=tmp_path, import_root=root))


def test_only_files_under_the_import_root_of_a_known_format_are_taken(config: Config, tmp_path: Path) -> None:
    root = config.paths.import_root
    for name in ("2024/a.jsonl", "2024/b.parquet", "2024/c.csv"):
        (root / name).write_text("x")
    (tmp_path / "secret.jsonl").write_text("x")
    assert resolve_files(config, ["2024/*.jsonl", str(root / "2024/b.parquet"), "2024/a.jsonl"]) == [
        root / "2024/a.jsonl", root / "2024/b.parquet"]
    for bad, message in ((str(tmp_path / "secret.jsonl"), "outside the import root"),
                         ("../secret.jsonl", "outside the import root"),
                         ("2024/c.csv", "unknown format '.csv'"),
                         ("2024/none.jsonl", "no such file"),
                         ("2023/*.parquet", "matches no file")):
        with pytest.raises(ImportFileError, match=message):
            resolve_files(config, [bad])
    (root / "link.jsonl").symlink_to(tmp_path / "secret.jsonl")
    with pytest.raises(ImportFileError, match="outside the import root"):
        resolve_files(config, ["link.jsonl"])


def test_json_lines_are_sent_as_they_are_and_blank_lines_are_no_records(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\n   \nnot json\n{"b": 2}')
    assert list(read_records(path)) == [b'{"a": 1}', b"not json", b'{"b": 2}']


def test_a_parquet_row_becomes_the_json_a_producer_would_send(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({
        "event_id": [EVENT["event_id"], EVENT["event_id"]],
        "user_id": ["u-1", "u-1"], "session_id": ["s-1", "s-1"], "event_type": ["purchase", "purchase"],
        "page": ["/checkout", "/checkout"], "product_id": ["p-1", None],
        "amount": pa.array([Decimal("19.90"), Decimal("0.05")], pa.decimal128(12, 2)),
        "event_time": pa.array([datetime(2024, 2, 29, 10, tzinfo=timezone.utc)] * 2, pa.timestamp("us", tz="UTC")),
        "naive_time": pa.array([datetime(2024, 2, 29, 10)] * 2, pa.timestamp("ms")),
        "properties": pa.array([[("device", "web")], None], pa.map_(pa.string(), pa.string())),
    }), path)
    first, second = (json.loads(r) for r in read_records(path))
    assert first == {**EVENT, "amount": 19.9, "naive_time": "2024-02-29T10:00:00", "properties": {"device": "web"}}
    assert "product_id" not in second and second["amount"] == 0.05
    accepted = validate(json.dumps(first).encode(), 1_800_000_000_000, imported=True)
    assert isinstance(accepted, Accepted) and accepted.amount == "19.90" and accepted.properties == {"device": "web"}


def test_a_dry_run_counts_without_sending(config: Config) -> None:
    path = config.paths.import_root / "2024/a.jsonl"
    lines = [json.dumps(EVENT), json.dumps({**EVENT, "event_time": "2023-01-01T00:00:00+00:00"}), "{\"event_id\":",
             json.dumps({**EVENT, "amount": -1})]
    path.write_text("\n".join(lines) + "\n")
    result = import_file(config, path, "events", start=datetime(2024, 1, 1, tzinfo=timezone.utc), dry_run=True)
    assert (result.path, result.outcome, result.records, result.accepted, result.rejected, result.skipped) == (
        "2024/a.jsonl", "dry-run", 4, 1, 2, 1)
    assert result.rejected_by_reason == {"truncated_json": 1, "negative_amount": 1}


def test_an_empty_or_malformed_file_is_a_clear_error(config: Config) -> None:
    empty = config.paths.import_root / "2024/empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ImportFileError, match="has no records"):
        import_file(config, empty, "events", dry_run=True)
    broken = config.paths.import_root / "2024/broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(ImportFileError, match="not a readable Parquet file"):
        import_file(config, broken, "events", dry_run=True)
