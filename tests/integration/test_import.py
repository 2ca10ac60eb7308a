"""History files into the platform (`lambdalake import`), on the real engines, while events stream.

Files under the import root, JSON lines and Parquet, hold good events months and years old (past
the 30-day lateness window, which imported records are exempt from), copies of an event inside a
file and across files, copies of events the stream also sends, bad records of several kinds, and
events outside the requested event-time range. They are imported with the CLI, as a user runs it,
while a producer streams events to the same topic.

The truth is computed here: every good copy as the broker stamped it (read back from the topic),
judged by the README's dedup rule. Serving must equal it, before and after a batch run. Importing
the same files again, under the same or another path, sends nothing. A path outside the import
root, a malformed file and an empty file are refused with a clear error, and send nothing. A
kappa view made after an import counts the imported history, and a later import as it streams.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake import state
from lambdalake.batch import Layers, run_once
from lambdalake.config import Config
from lambdalake.events import IMPORT_FILE_HEADER, IMPORT_ROW_HEADER
from lambdalake.heartbeat import HEARTBEAT_HEADER
from lambdalake.kappa import reprocess
from lambdalake.generator import EventGenerator
from lambdalake.producer import make_producer
from lambdalake.query import run_query
from tests.integration.conftest import LAMBDALAKE, deployed_layers
from tests.integration.test_batch import never_above, serving_totals
from tests.integration.test_kappa import KappaView, above, view  # noqa: F401 - view: the fixture
from tests.integration.test_kappa import serving as kappa_serving
from tests.integration.test_speed import aggregate, floor

NOW = datetime.now(timezone.utc)
#: the range imported: from about 13 months back to now (older events are skipped)
FROM = NOW - timedelta(days=400)


def good_events(seed: int, count: int, days_back: tuple[int, int]) -> list[dict]:  # type: ignore[type-arg]
    """Good events (generator shapes) with event times spread over the days back given."""
    events = []
    for i, record in enumerate(r for r in EventGenerator(seed=seed).records() if r.kind == "valid"):
        if i == count:
            break
        event = json.loads(record.value)
        span = days_back[1] - days_back[0]
        event["event_time"] = (NOW - timedelta(days=days_back[0] + span * i / count, seconds=i * 37)).isoformat()
        events.append(event)
    return events


class Stream(threading.Thread):
    """A producer sending events, some of them copies of imported ones, until they run out."""

    def __init__(self, config: Config, topic: str, events: Iterator[dict]) -> None:  # type: ignore[type-arg]
        super().__init__(daemon=True)
        self.config, self.topic, self.events = config, topic, events
        self.sent = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        producer = make_producer(self.config)
        while not self.stopping.is_set() and (chunk := list(islice(self.events, 20))):
            for event in chunk:
                producer.produce(self.topic, key=None, value=json.dumps(event).encode())
                self.sent += 1
            assert producer.flush(30) == 0
            time.sleep(0.2)


def log_copies(config: Config, topic: str, good_rows: set[tuple[str, int]],
               late: set[bytes]) -> list[tuple]:  # type: ignore[type-arg]
    """Every committed good copy in the topic: (timestamp, partition, offset, imported, event). An
    imported record is good when its file and row are in good_rows; the stream's records are good
    but for the late ones."""
    consumer = Consumer({"bootstrap.servers": config.kafka_bootstrap, "group.id": f"test-import-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    copies = []
    while any(consumer.position([TopicPartition(topic, p)])[0].offset < end for p, end in ends.items() if end > 0):
        for message in consumer.consume(500, timeout=2):
            if message.error() or message.offset() >= ends[message.partition()]:
                continue
            headers = dict(message.headers() or [])
            if HEARTBEAT_HEADER in headers:
                continue
            imported = IMPORT_FILE_HEADER in headers
            if not imported and message.value() in late:
                continue
            if imported and (headers[IMPORT_FILE_HEADER].decode(), int(headers[IMPORT_ROW_HEADER])) not in good_rows:
                continue
            copies.append((message.timestamp()[1], message.partition(), message.offset(), imported,
                           json.loads(message.value())))
    consumer.close()
    return copies


def truth(copies: list[tuple], horizon_seconds: int) -> dict[str, dict[tuple, tuple]]:  # type: ignore[type-arg]
    """The README's rule: a copy counts unless an earlier one (timestamp, partition, offset) was at most the horizon before."""
    last_seen: dict[str, int] = {}
    counted = []
    for timestamp, _, _, _, event in sorted(copies, key=lambda c: c[:3]):
        previous = last_seen.get(event["event_id"])
        if previous is None or timestamp - previous > horizon_seconds * 1000:
            counted.append(event)
        last_seen[event["event_id"]] = timestamp
    return aggregate(counted)


def imported_in_log(config: Config, topic: str) -> int:
    """How many records in the topic carry import headers, committed or not."""
    consumer = Consumer({"bootstrap.servers": config.kafka_bootstrap, "group.id": f"test-import-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_uncommitted"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    count, done = 0, {p for p, end in ends.items() if end == 0}
    while len(done) < len(ends):
        for message in consumer.consume(500, timeout=2):
            if message.error():
                continue
            if message.offset() < ends[message.partition()]:
                count += any(k == IMPORT_FILE_HEADER for k, _ in message.headers() or [])
            if message.offset() >= ends[message.partition()] - 1:
                done.add(message.partition())
        done |= {tp.partition for tp in consumer.position([TopicPartition(topic, p) for p in ends])
                 if tp.offset >= ends[tp.partition]}
    consumer.close()
    return count


def cli_import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAMBDALAKE, "import", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture
def layers(config: Config) -> Iterator[Layers]:
    with deployed_layers(config, "import") as layers:
        yield layers


@pytest.fixture
def ingest_only(config: Config) -> Iterator[Layers]:
    """Layers fed by an ingest job alone: for the tests that look at the master dataset only."""
    with deployed_layers(config, "import", speed=False) as layers:
        yield layers


@pytest.fixture
def topic(config: Config) -> Iterator[str]:
    """A topic of the test's own, read by no job: for imports that must send nothing."""
    name = f"test-import-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=config.kafka.replication_factor)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)


@pytest.fixture
def folder(config: Config) -> Iterator[Path]:
    """A folder of the test's own under the import root."""
    folder = config.paths.import_root / f"test-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder)


def test_history_files_reach_serving_exactly_once_while_events_stream(config: Config, layers: Layers,
                                                                        folder: Path) -> None:
    topic = layers.topic
    old = good_events(seed=81, count=600, days_back=(40, 390))  # all past the lateness window
    ancient = good_events(seed=82, count=50, days_back=(500, 900))  # before --from: skipped
    recent = good_events(seed=83, count=100, days_back=(0, 2))
    # the JSON lines file: old events, a copy of some of them further down, bad records, ancient events
    lines = [json.dumps(e) for e in old[:400]] + [json.dumps(e) for e in old[:40]]
    lines += ["not json at all", '{"event_id": "cut short', json.dumps({**old[0], "amount": -3, "event_type": "purchase"}),
              json.dumps({k: v for k, v in old[1].items() if k != "user_id"}),
              json.dumps({**old[2], "event_time": (NOW + timedelta(days=3)).isoformat()})]
    lines += [json.dumps(e) for e in ancient]
    (folder / "2024.jsonl").write_text("\n".join(lines) + "\n")
    # the Parquet file: the other old events, copies of some in the JSON file, recent events
    rows = old[400:] + old[380:420] + recent
    columns = {name: [e.get(name) for e in rows] for name in ("event_id", "user_id", "session_id", "event_type",
                                                                "page", "product_id")}
    parquet = pa.table({**columns,
                        "amount": pa.array([None if e.get("amount") is None else str(e["amount"]) for e in rows],
                                           pa.string()).cast(pa.decimal128(12, 2)),
                        "event_time": pa.array([datetime.fromisoformat(e["event_time"]) for e in rows],
                                               pa.timestamp("us", tz="UTC"))})
    pq.write_table(parquet, folder / "2025.parquet")
    naive = pa.table({**{name: [old[3][name]] for name in columns}, "amount": pa.array([None], pa.decimal128(12, 2)),
                      "event_time": pa.array([datetime(2025, 6, 1)], pa.timestamp("us"))})  # no zone: rejected
    pq.write_table(naive, folder / "2025-naive.parquet")
    # which imported rows are good, by file and row; the stream sends good events only
    good_rows = {(f"{folder.name}/2024.jsonl", row) for row in range(1, 441)}
    good_rows |= {(f"{folder.name}/2025.parquet", row) for row in range(1, len(rows) + 1)}

    # a producer streams new events, and copies of imported ones, all along; its copies of old
    # events are late (more than 30 days) and rejected: only imported records are exempt
    live = good_events(seed=84, count=400, days_back=(0, 0))
    late = old[100:130]
    stream = Stream(config, topic, iter(live + recent[:30] + late + live[:20]))
    stream.start()
    time.sleep(3)

    dry = cli_import(f"{folder.name}/*", "--from", FROM.isoformat(), "--topic", topic, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    result = cli_import(f"{folder.name}/*", "--from", FROM.isoformat(), "--topic", topic, "--json")
    assert result.returncode == 0, result.stderr
    assert [{k: r[k] for k in ("records", "accepted", "rejected", "skipped")} for r in json.loads(dry.stdout)] == [
        {k: r[k] for k in ("records", "accepted", "rejected", "skipped")} for r in json.loads(result.stdout)]
    by_file = {r["path"].split("/")[-1]: r for r in json.loads(result.stdout)}
    jsonl, parq, naive_parq = by_file["2024.jsonl"], by_file["2025.parquet"], by_file["2025-naive.parquet"]
    assert (jsonl["records"], jsonl["accepted"], jsonl["rejected"], jsonl["skipped"]) == (len(lines), 440, 5, 50)
    assert jsonl["rejected_by_reason"] == {"not_json": 1, "truncated_json": 1, "negative_amount": 1,
                                           "missing_field": 1, "absurd_event_time": 1}
    assert (parq["records"], parq["accepted"], parq["rejected"], parq["skipped"]) == (len(rows), len(rows), 0, 0)
    assert (naive_parq["records"], naive_parq["rejected_by_reason"]) == (1, {"bad_event_time": 1})
    recorded = {r["path"]: r for r in state.file_imports(config, topic)}
    assert recorded[jsonl["path"]]["status"] == "sent" and recorded[jsonl["path"]]["skipped"] == 50

    stream.join()  # every event sent: the checks below count them all

    # the master dataset: every imported record once, with its file and row; the bad ones with their reason
    imported = jsonl["accepted"] + parq["accepted"]
    deadline = time.monotonic() + 180
    while True:
        _, counts = run_query(config, f"select count(*), count(import_file), count(distinct import_file || '#' || "
                                      f"cast(import_row as varchar)) from {layers.events_table}")
        _, rejected = run_query(config, f"select reason_code, import_file, import_row from {layers.rejected_table}")
        if counts[0][1] >= imported and len(rejected) >= 6 + len(late) and \
                counts[0][0] >= imported + stream.sent - len(late):
            break
        assert time.monotonic() < deadline, f"raw tables never held the import: {counts}, {len(rejected)} rejected"
        time.sleep(3)
    assert counts[0][1] == counts[0][2] == imported
    assert counts[0][0] == imported + stream.sent - len(late)
    assert sorted((r[0], (r[1] or "").split("/")[-1]) for r in rejected) == sorted(
        [(code, "2024.jsonl") for code in jsonl["rejected_by_reason"]] + [("bad_event_time", "2025-naive.parquet")]
        + [("absurd_event_time", "")] * len(late))
    assert {(r[0], r[2]) for r in rejected} >= {("not_json", 441), ("bad_event_time", 1)}
    _, skipped_ids = run_query(config, f"select count(*) from {layers.events_table} where event_id in "
                                       f"({', '.join(repr(e['event_id']) for e in ancient)})")
    assert skipped_ids == [[0]]

    copies = log_copies(config, topic, good_rows, {json.dumps(e).encode() for e in late})
    assert sum(1 for c in copies if c[3]) == imported
    expected = truth(copies, layers.horizon(config))
    assert_serving_reaches(config, layers, expected)
    assert run_once(config, layers), "no batch run: the master dataset was never complete"
    assert_serving_reaches(config, layers, expected)

    # the same files again, under the same path and under another: nothing is sent
    shutil.copy(folder / "2024.jsonl", folder / "again.jsonl")
    sent_before = imported_in_log(config, topic)
    again = cli_import(f"{folder.name}/2024.jsonl", f"{folder.name}/again.jsonl", f"{folder.name}/2025.parquet",
                       "--topic", topic)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already imported") == 3, again.stdout
    assert imported_in_log(config, topic) == sent_before == imported + 1 + 5  # the good, naive and bad ones


def assert_serving_reaches(config: Config, layers: Layers, expected: dict[str, dict[tuple, tuple]], timeout: float = 180) -> None:  # type: ignore[type-arg]
    """Serving equals the truth within the timeout, and is never above it meanwhile."""
    deadline = time.monotonic() + timeout
    while (serving := serving_totals(config, layers)) != expected:
        assert not never_above(serving, expected), never_above(serving, expected)[:5]
        if time.monotonic() > deadline:
            wrong = {name: [(k, serving[name].get(k), v) for k, v in expected[name].items() if serving[name].get(k) != v]
                     for name in expected}
            pytest.fail(f"serving never equalled the truth: {[(n, w[:3]) for n, w in wrong.items()]}")
        time.sleep(2)


def test_bad_imports_are_refused_with_a_clear_error_and_send_nothing(config: Config, topic: str,
                                                                     folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "history.jsonl"
    outside.write_text(json.dumps(good_events(seed=85, count=1, days_back=(40, 41))[0]) + "\n")
    (folder / "broken.parquet").write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    (folder / "empty.jsonl").write_text("\n \n")
    for args, message in (([str(outside)], "is outside the import root"),
                          ([f"{folder.name}/../../../{outside.name}"], "is outside the import root"),
                          ([f"{folder.name}/broken.parquet"], "not a readable Parquet file"),
                          ([f"{folder.name}/empty.jsonl"], "has no records"),
                          ([f"{folder.name}/none.jsonl"], "no such file"),
                          ([f"{folder.name}/empty.jsonl", "--from", "2025-01-01"], "has no time zone"),
                          ([f"{folder.name}/empty.jsonl", "--from", "yesterday"], "is not ISO-8601")):
        result = cli_import(*args, "--topic", topic)
        assert result.returncode != 0, (args, result.stdout)
        assert message in result.stderr + result.stdout, (args, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
    assert imported_in_log(config, topic) == 0
    assert state.file_imports(config, topic) == []


def test_backfill_from_the_airflow_form_loads_the_files_and_emits_the_asset_event(config: Config, ingest_only: Layers,
                                                                                    folder: Path) -> None:
    """A person fills the `backfill` form: the files are required (Trigger stays disabled without
    them), the range and dry run are optional. The run loads the files, waits until the master
    dataset holds them, and emits the asset event `batch_recompute` is scheduled on."""
    from playwright.sync_api import expect

    from lambdalake.engines.airflow import Airflow, AirflowApi
    from tests.browser import airflow_login, chromium, open_form, wait_for_new_run

    events = good_events(seed=86, count=200, days_back=(45, 200))
    (folder / "a.jsonl").write_text("\n".join(json.dumps(e) for e in events[:150]) + "\n")
    (folder / "b.jsonl").write_text("\n".join(json.dumps(e) for e in events[150:]) + "\nnot json\n")
    api = AirflowApi(Airflow(config))
    api.prepare_dag("backfill")
    with chromium() as browser:
        page = airflow_login(config, browser)
        dialog = open_form(page, config, "backfill")
        expect(dialog.get_by_role("button", name="Trigger")).to_be_disabled()  # no files yet
        dialog.locator("[name=element_paths]").fill(f"{folder.name}/*.jsonl")
        for name, value in (("topic", ingest_only.topic), ("events_table", ingest_only.events_table),
                            ("rejected_table", ingest_only.rejected_table)):
            dialog.locator(f"[name=element_{name}]").fill(value)
        before = datetime.now(timezone.utc)
        expect(dialog.get_by_role("button", name="Trigger")).to_be_enabled()
        dialog.get_by_role("button", name="Trigger").click()
        run = wait_for_new_run(api, "backfill", before)
    assert run["conf"]["paths"] == [f"{folder.name}/*.jsonl"], run["conf"]
    assert api.wait("backfill", run["dag_run_id"], timeout=600) == "success"
    log = api.task_log("backfill", run["dag_run_id"], "load")
    assert f"{folder.name}/a.jsonl: 150 records sent: 150 accepted, 0 rejected" in log, log
    assert f"{folder.name}/b.jsonl: 51 records sent: 50 accepted, 1 rejected, 1 not_json" in log, log
    [event] = api.asset_events("backfill", run["dag_run_id"])
    assert event["uri"] == f"lake://{ingest_only.events_table.replace('.', '/')}", event
    # `ingested` waited for the master dataset: the rows are there once the run succeeded
    _, counts = run_query(config, f"select count(*) from {ingest_only.events_table} where import_file like "
                                  f"'{folder.name}/%'")
    assert counts == [[200]]


def test_a_kappa_view_is_bootstrapped_by_imported_history_and_counts_later_imports(config: Config,
                                                                                   view: KappaView,
                                                                                   folder: Path) -> None:
    """History imported before a kappa view exists is replayed into it with the rest of the log;
    a file imported while its job runs is counted as it streams. The view equals its truth: each
    good event once, by its first copy."""
    history = good_events(seed=87, count=500, days_back=(35, 700))
    first = [json.dumps(e) for e in history[:300]] + [json.dumps(e) for e in history[:50]] + ["{oops"]
    (folder / "first.jsonl").write_text("\n".join(first) + "\n")
    assert cli_import(f"{folder.name}/first.jsonl", "--topic", view.topic).returncode == 0
    view.define(1)
    reprocess(config, view.name, 1, print, topic=view.topic, grace_seconds=0)
    expected = {key: (n,) for key, n in Counter(
        (floor(e["event_time"], 1), e["event_type"]) for e in history[:300]).items()}
    wait_for_kappa(config, view, expected)

    (folder / "second.jsonl").write_text("\n".join(json.dumps(e) for e in history[250:]) + "\n")
    result = cli_import(f"{folder.name}/second.jsonl", "--topic", view.topic)
    assert result.returncode == 0, result.stderr
    # history[250:300] were imported minutes ago, within the dedup horizon: counted once
    expected = {key: (n,) for key, n in Counter((floor(e["event_time"], 1), e["event_type"]) for e in history).items()}
    wait_for_kappa(config, view, expected)


def wait_for_kappa(config: Config, view: KappaView, expected: dict[tuple, tuple], timeout: float = 180) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while (answer := kappa_serving(config, view))[1] != expected:
        assert not above(answer[1], expected), above(answer[1], expected)[:5]
        assert time.monotonic() < deadline, f"the kappa view never equalled its truth: {len(answer[1])} rows"
        time.sleep(3)


@pytest.mark.lane_b  # an ingest job and a topic of its own: no DAG, no view
def test_an_import_killed_midway_resumes_after_its_committed_chunks(config: Config, ingest_only: Layers,
                                                                     folder: Path) -> None:
    """The import process is killed (SIGKILL) after some chunks committed, inside another whose
    transaction is open; run again, it aborts that transaction at once (rather than wait for the
    broker's timeout) and sends the rest. Every row reaches the master dataset exactly once."""
    rows = 120_000
    events = good_events(seed=88, count=rows, days_back=(40, 43))
    (folder / "big.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    script = ("import sys\nfrom pathlib import Path\nfrom lambdalake.config import load_config\n"
              "from lambdalake.imports import import_file\n"
              f"import_file(load_config(), Path({str(folder / 'big.jsonl')!r}), {ingest_only.topic!r}, chunk_rows=10_000)\n")
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    while not ((recorded := state.file_imports(config, ingest_only.topic)) and (recorded[0]["rows_committed"] or 0) >= 30_000):
        assert process.poll() is None, "the import ended before it could be killed"
        assert time.monotonic() < deadline, "the import never committed 3 chunks"
        time.sleep(0.02)
    time.sleep(0.15)  # into the next chunk: its transaction is open on the broker when the process dies
    process.kill()
    process.wait()
    killed_at = state.file_imports(config, ingest_only.topic)[0]
    assert killed_at["status"] == "sending" and killed_at["rows_committed"] < rows, killed_at

    resumed_at = time.monotonic()
    again = cli_import(f"{folder.name}/big.jsonl", "--topic", ingest_only.topic, "--json")
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - resumed_at < 120, "the resume waited for the killed run's transaction to time out"
    [result] = json.loads(again.stdout)
    assert (result["outcome"], result["records"], result["accepted"]) == ("sent", rows, rows)
    deadline = time.monotonic() + 300
    while (counts := run_query(config, f"select count(*), count(distinct import_row) from {ingest_only.events_table}")[1][0]
           ) != [rows, rows]:
        assert counts[0] <= rows, f"rows imported twice: {counts}"
        assert time.monotonic() < deadline, f"the master dataset never held the file once: {counts}"
        time.sleep(3)
    assert state.file_imports(config, ingest_only.topic)[0]["status"] == "sent"
