"""History files into the log: `lambdalake import` and the `backfill` DAG.

A history file (JSON lines or Parquet, under `[paths] import_root`) is read record by record, and
each record is sent to the events topic as the value a producer would have sent, with Kafka
headers that mark it imported (lambdalake.events.IMPORT_*). So everything downstream treats it as
any other record:
- the ingest job validates it with the platform's rules, exempt from the lateness window alone,
  and stores it in raw.events with its file and row, or in raw.events_rejected with its reason;
- the speed job, and every kappa replay of the log, count it;
- the one dedup rule decides between an imported copy and a producer's copy of an event, in both
  layers, from the ingest position the broker gave each.

How a file becomes records:
- JSON lines (`.jsonl`, `.json`, `.ndjson`): each line that is not blank is one record, sent as is.
- Parquet (`.parquet`): each row is one record, sent as a JSON object of its columns. Timestamps
  become ISO-8601 with their zone (a timestamp without a zone stays without one, and the rules
  reject it as bad_event_time); decimals become numbers; maps and structs become objects. A column
  the event does not know is passed along, and ignored like a producer's extra field.

A file is known by its SHA-256: importing the same content again, under any path, sends nothing.
A file goes to the log in chunks of CHUNK_ROWS rows, one Kafka transaction each (its transactional
id made from the topic and the checksum), and is recorded in the state store (`lambdalake_imports`)
as sending, with the rows committed after each chunk, then as sent, with its counts. Readers of the
log read committed records only, so a run killed midway leaves whole chunks they see, and the next
run sends the rows after them. A run killed between a commit and its record is told apart by
scanning the log, from when the import started, for the file's highest committed row.

Counts: records = accepted + rejected + skipped. Skipped are the accepted records whose event time
is outside the requested range; they are not sent. Accepted and rejected are judged when the file
is read, by the rules the ingest job applies (lambdalake.events.validate, imported), against this
machine's clock where the job uses the broker's.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from lambdalake.config import Config
from lambdalake.errors import LambdalakeError
from lambdalake.events import (IMPORT_FILE_HEADER, IMPORT_ROW_HEADER, IMPORT_SHA256_HEADER, Accepted,
                               validate)

JSON_LINES_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
#: Parquet rows read at a time
BATCH_ROWS = 65_536
#: rows of a file sent in one Kafka transaction: the ingest job reads committed records only, so
#: a chunk's records reach it when the chunk commits, and a killed import resumes after the last
#: committed chunk
CHUNK_ROWS = 250_000
#: a transaction may stay open this long (the broker's transaction.max.timeout.ms, 15 minutes by
#: default, caps it); a chunk takes seconds
TRANSACTION_TIMEOUT_MS = 900_000


class ImportFileError(LambdalakeError):
    """A file that cannot be imported: outside the import root, unreadable, of no known format, empty."""


@dataclass
class FileImport:
    """What happened to one file."""

    path: str
    sha256: str
    #: sent; already (imported before: nothing sent); dry-run (read and counted, nothing sent)
    outcome: str = "sent"
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    seconds: float = 0.0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        if self.outcome == "already":
            return f"{self.path}: already imported (sha256 {self.sha256[:12]}), nothing sent"
        rate = f", {self.records / self.seconds:,.0f} records/s" if self.seconds > 0 else ""
        verb = "read (dry run, nothing sent)" if self.outcome == "dry-run" else "sent"
        reasons = "".join(f", {n} {code}" for code, n in sorted(self.rejected_by_reason.items()))
        return (f"{self.path}: {self.records} records {verb}: {self.accepted} accepted, {self.rejected} rejected"
                f"{reasons}, {self.skipped} skipped (outside the range){rate}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- finding files ----------------------------------------------------------------------------

def resolve_files(config: Config, patterns: list[str]) -> list[Path]:
    """The files the patterns name (paths or globs, absolute or relative to the import root), every
    one under the import root, in a stable order; raises naming the first that is not."""
    root = config.paths.import_root.resolve()
    if not patterns:
        raise ImportFileError(f"no file given: name files or globs under the import root {root}")
    files: list[Path] = []
    for pattern in patterns:
        candidate = Path(pattern).expanduser()
        base = candidate if candidate.is_absolute() else root / candidate
        if any(ch in pattern for ch in "*?["):
            anchor = Path(base.anchor)
            matches = sorted(p for p in anchor.glob(str(base.relative_to(anchor))) if p.is_file())
            if not matches:
                raise ImportFileError(f"{pattern!r} matches no file under the import root {root}")
        else:
            matches = [base]
        for match in matches:
            resolved = match.resolve()
            if not resolved.is_relative_to(root):
                raise ImportFileError(f"{pattern!r} is outside the import root {root}: copy the file under it, or set "
                                   f"[paths] import_root in lambdalake.toml")
            if not resolved.is_file():
                raise ImportFileError(f"{pattern!r}: no such file under the import root {root}")
            if resolved.suffix.lower() not in JSON_LINES_SUFFIXES + PARQUET_SUFFIXES:
                raise ImportFileError(f"{pattern!r}: unknown format {resolved.suffix!r}; a history file is JSON lines "
                                   f"({', '.join(JSON_LINES_SUFFIXES)}) or Parquet (.parquet)")
            if resolved not in files:
                files.append(resolved)
    return files


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- reading records --------------------------------------------------------------------------

def _json_value(value: Any) -> Any:
    """A Parquet value as the JSON a producer would send."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # cents fit a double exactly up to 15 digits; a longer number keeps its text
        return float(value) if len(value.as_tuple().digits) <= 15 else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        if all(isinstance(item, tuple) and len(item) == 2 for item in value):  # a map, as pyarrow lists it
            return {str(k): _json_value(v) for k, v in value}
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def read_records(path: Path) -> Iterator[bytes]:
    """Each record of a history file, as the Kafka value a producer would send; raises ImportFileError
    when the file cannot be read as its format."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise ImportFileError(f"{path.name}: not a readable Parquet file: {exc}") from None
        batches = parquet.iter_batches(batch_size=BATCH_ROWS)
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # noqa: BLE001
                raise ImportFileError(f"{path.name}: a row group cannot be read: {exc}") from None
            if batch is None:
                return
            for row in batch.to_pylist():
                yield json.dumps({k: _json_value(v) for k, v in row.items() if v is not None}).encode()
    with path.open("rb") as file:
        for line in file:
            if line.strip():
                yield line.rstrip(b"\r\n")


def _in_range(accepted: Accepted, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or accepted.event_time_ms >= start_ms) and (end_ms is None or accepted.event_time_ms < end_ms)


# --- sending ----------------------------------------------------------------------------------

def _producer(config: Config, transactional_id: str):  # type: ignore[no-untyped-def]
    from confluent_kafka import Producer

    from lambdalake.producer import MAX_MESSAGE_BYTES

    return Producer({
        "bootstrap.servers": config.kafka_bootstrap,
        "transactional.id": transactional_id,
        "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
        "acks": "all",
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "message.max.bytes": MAX_MESSAGE_BYTES,
        "log_level": 3,
    })


def _last_committed_row(config: Config, topic: str, sha256: str, since: datetime) -> int:
    """The highest row of the file (its checksum header) the log holds committed, stamped from
    `since` on; 0 when none."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": config.kafka_bootstrap, "group.id": f"lambdalake-import-{sha256[:12]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed", "log_level": 3})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        since_ms = int(since.timestamp() * 1000) - 60_000
        starts = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=10)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        todo = [tp for tp in starts if 0 <= tp.offset < ends[tp.partition]]
        last, wanted = 0, sha256.encode()
        if not todo:
            return last
        consumer.assign(todo)
        left = {tp.partition for tp in todo}
        while left:
            for message in consumer.consume(10_000, timeout=5):
                if message.error():
                    continue
                headers = dict(message.headers() or [])
                if headers.get(IMPORT_SHA256_HEADER) == wanted:
                    last = max(last, int(headers[IMPORT_ROW_HEADER]))
            # stop at the end: an aborted transaction's records and the markers are never delivered
            positions = consumer.position([TopicPartition(topic, p) for p in left])
            left -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
        return last
    finally:
        consumer.close()


def import_file(config: Config, path: Path, topic: str, *, start: datetime | None = None,
                end: datetime | None = None, dry_run: bool = False, chunk_rows: int = CHUNK_ROWS,
                progress: Callable[[int], None] = lambda sent: None) -> FileImport:
    """Send one history file's records to topic (see the module's docstring); idempotent, and
    resumed after the rows a killed run committed."""
    from lambdalake import state

    root = config.paths.import_root.resolve()
    relative = str(path.resolve().relative_to(root))
    result = FileImport(relative, checksum(path), outcome="dry-run" if dry_run else "sent")
    start_ms = None if start is None else int(start.timestamp() * 1000)
    end_ms = None if end is None else int(end.timestamp() * 1000)
    started = time.monotonic()
    if dry_run:
        _send(None, topic, path, result, start_ms, end_ms, 0, chunk_rows, lambda rows: None, progress)
        result.seconds = round(time.monotonic() - started, 3)
        return result
    earlier = state.file_import(config, topic, result.sha256)
    if earlier is not None and earlier["status"] == "sent":
        result.outcome = "already"
        return result
    producer = _producer(config, f"lambdalake-import-{topic}-{result.sha256[:32]}")
    # fences a killed run's producer and aborts its open transaction, before the log is read: an
    # open transaction holds committed readers back until the broker times it out (15 minutes)
    producer.init_transactions(60)
    resume_after = 0
    if earlier is not None:  # a run killed midway: its committed chunks stay, the rest is sent
        resume_after = max(earlier["rows_committed"] or 0,
                           _last_committed_row(config, topic, result.sha256, earlier["started_at"]))
    state.import_sending(config, topic, result.sha256, relative, start, end, resume_after)
    try:
        _send(producer, topic, path, result, start_ms, end_ms, resume_after, chunk_rows,
              lambda rows: state.import_committed(config, topic, result.sha256, rows), progress)
    except BaseException:
        if resume_after == 0 and not (state.file_import(config, topic, result.sha256) or {}).get("rows_committed"):
            state.forget_import(config, topic, result.sha256)
        raise
    result.seconds = round(time.monotonic() - started, 3)
    state.import_sent(config, topic, result.sha256, result.as_dict())
    return result


def _send(producer: Any, topic: str, path: Path, result: FileImport, start_ms: int | None, end_ms: int | None,
          resume_after: int, chunk_rows: int, committed: Callable[[int], None],
          progress: Callable[[int], None]) -> None:
    """Read and judge every record of the file, counting into result; with a producer, send those
    after row resume_after, one transaction per chunk_rows rows, calling committed(row) after each
    commit."""
    failures: list[str] = []

    def delivered(error, message) -> None:  # type: ignore[no-untyped-def]
        if error is not None:
            failures.append(str(error))

    def commit(row: int) -> None:
        producer.flush(TRANSACTION_TIMEOUT_MS / 1000)
        if failures:
            raise LambdalakeError(f"{result.path}: {len(failures)} records were not delivered to {topic} "
                                  f"({failures[:3]}); rows {row - chunk_rows + 1}..{row} were not sent: import "
                                  "the file again to send the rest")
        producer.commit_transaction(TRANSACTION_TIMEOUT_MS / 1000)
        committed(row)

    now_ms = int(time.time() * 1000)
    open_transaction = False
    row = 0
    try:
        for row, payload in enumerate(read_records(path), start=1):
            result.records += 1
            verdict = validate(payload, now_ms, imported=True)
            if isinstance(verdict, Accepted):
                if not _in_range(verdict, start_ms, end_ms):
                    result.skipped += 1
                    continue
                result.accepted += 1
                key = verdict.user_id.encode()
            else:
                result.rejected += 1
                result.rejected_by_reason[verdict.reason_code] = result.rejected_by_reason.get(verdict.reason_code, 0) + 1
                key = None
            if row % 10_000 == 0:
                progress(row)
            if producer is None or row <= resume_after:
                continue
            if not open_transaction:
                producer.begin_transaction()
                open_transaction = True
            headers = [(IMPORT_SHA256_HEADER, result.sha256.encode()), (IMPORT_FILE_HEADER, result.path.encode()),
                       (IMPORT_ROW_HEADER, str(row).encode())]
            while True:
                try:
                    producer.produce(topic, key=key, value=payload, headers=headers, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)  # the local queue is full: let deliveries drain it
            producer.poll(0)
            if row % chunk_rows == 0:
                commit(row)
                open_transaction = False
        if result.records == 0:
            raise ImportFileError(f"{result.path}: the file has no records; nothing was sent")
        if open_transaction:
            commit(row)
            open_transaction = False
    except BaseException:
        # an open transaction holds back every reader of the log until it times out: end it now
        if open_transaction:
            producer.abort_transaction(60)
        raise
    progress(result.records)


def import_files(config: Config, patterns: list[str], *, topic: str | None = None, start: datetime | None = None,
                 end: datetime | None = None, dry_run: bool = False,
                 say: Callable[[str], None] = lambda line: None) -> list[FileImport]:
    """Import every file the patterns name, one after another; every path is checked before any
    file is read."""
    if start is not None and end is not None and start >= end:
        raise ImportFileError(f"the event-time range is empty: from {start.isoformat()} is not before to "
                           f"{end.isoformat()}")
    for moment in (start, end):
        if moment is not None and moment.tzinfo is None:
            raise ImportFileError(f"{moment.isoformat()} has no time zone: give one, e.g. {moment.isoformat()}+00:00")
    files = resolve_files(config, patterns)
    results = []
    for path in files:
        result = import_file(config, path, topic or config.kafka.events_topic, start=start, end=end,
                             dry_run=dry_run)
        say(result.line())
        results.append(result)
    return results


# --- the backfill DAG -------------------------------------------------------------------------

def moment(value: object, what: str) -> datetime | None:
    """An event-time bound given as text (a CLI option, a DAG param): ISO-8601; None when empty.
    import_files checks it has a time zone."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ImportFileError(f"{what}: {value!r} is not ISO-8601, e.g. 2025-01-01T00:00:00+00:00") from None


def load_from_params(config: Config, params: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    """The backfill DAG's load: import_files with the DAG's params; what `ingested` needs next."""
    from lambdalake import names

    topic = names.topic_name(params.get("topic") or config.kafka.events_topic)
    results = import_files(config, list(params.get("paths") or []), topic=topic,
                           start=moment(params.get("from"), "param from"), end=moment(params.get("to"), "param to"),
                           dry_run=bool(params.get("dry_run")), say=say)
    return {"sent": any(r.outcome == "sent" for r in results), "committed_at": datetime.now(timezone.utc).isoformat(),
            "events_table": names.table_name(params.get("events_table") or "raw.events"),
            "files": [r.as_dict() for r in results]}


def wait_until_ingested(config: Config, params: dict[str, Any], loaded: dict[str, Any], say: Callable[[str], None],
                        timeout: float = 900) -> dict[str, Any]:
    """Wait until the batch layer's boundary B is past the moment the import was committed: every
    imported record is then in the master dataset, below B. Raises after timeout seconds."""
    from lambdalake.batch import choose_boundary, layers_from

    if not loaded["sent"]:
        return loaded
    layers = layers_from(config, params)
    committed = datetime.fromisoformat(loaded["committed_at"])
    deadline = time.monotonic() + timeout
    while (chosen := choose_boundary(config, layers)) is None or chosen.moment <= committed:
        if time.monotonic() > deadline:
            raise LambdalakeError(
                f"{layers.events_table} is not complete past {committed.isoformat()} after {timeout:.0f} s (B is "
                f"{chosen.moment.isoformat() if chosen else 'not set'}): is the ingest job of {layers.topic} running? "
                "See `lambdalake status`")
        time.sleep(5)
    say(f"{layers.events_table} is complete up to B={chosen.moment.isoformat()}, past the import "
        f"({committed.isoformat()})")
    return {**loaded, "boundary": chosen.moment.isoformat()}
