"""The ingest rules in the JVM and in Python agree, record by record, on the running ingest job.

The job checks each record in the JVM first (flink_jobs/functions AcceptedEvent, the fast path
that accepts only what it is sure `lambdalake.events.validate` accepts) and sends every other
record through the Python rules. Here every malformed kind of the generator, late and duplicate
events, shapes picked to sit on the fast path's edges (amounts that round half-way, instants with
offsets, UUIDs in other spellings, properties to re-serialize, spaces Python strips, repeated
keys, bad UTF-8) and randomly damaged records go through Kafka and the job. Each record's row in
raw.events or raw.events_rejected must be what `validate` says of it, computed here with the
timestamp Kafka gave the record: the same reason code, or the same accepted fields.

Every third record goes with the headers of a record imported from a history file
(lambdalake.imports), which exempt it from the lateness window alone; events years old are among
them, and the rows keep the file and row the headers name.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.events import IMPORT_FILE_HEADER, IMPORT_ROW_HEADER, IMPORT_SHA256_HEADER, Accepted, validate
from lambdalake.flink_rest import FlinkRest
from lambdalake.generator import EventGenerator, Faults
from lambdalake.ingest import IngestTarget, start
from lambdalake.jobs import cancel, live_jobs
from lambdalake.producer import make_producer
from lambdalake.query import run_query

FAULTS = Faults(late_fraction=0.1, late_max=timedelta(hours=6), duplicate_fraction=0.05, malformed_fraction=0.3)


def _event(rng: random.Random, now: datetime) -> dict:  # type: ignore[type-arg]
    return {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "user_id": "user-1",
            "session_id": "session-1", "event_type": "purchase", "page": "/p", "product_id": "product-1",
            "amount": 12.5, "event_time": (now - timedelta(minutes=3)).isoformat(timespec="milliseconds"),
            "properties": {"device": "web"}}


def edge_records(now: datetime) -> list[bytes]:
    """Records on the fast path's edges: each changes one field of a good purchase."""
    rng = random.Random(5)
    records = []

    def variant(**changes: object) -> None:
        records.append(json.dumps({**_event(rng, now), **changes}).encode())

    for amount in (2.675, 1.005, 0.125, 0.135, 12, "12.345", "0012.50", 1e-5, 1.5e3, 9999999999.995, 1e10, -0.0,
                   "-0", " 5", "1_000", "5.", ".5", True, None, [], 123456789012345678,
                   0.1000000000000000055511151231257827, 3.14159265358979, "\u0663", 1e400, "NaN"):
        variant(amount=amount)
    for moment in ("Z", "+00:00", ".123456+05:30", ".1+00:00", " +00:00", "", ".1234567+00:00", "-23:59", "+24:00"):
        variant(event_time=(now - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S") + moment)
    for moment in ("2026-02-30T08:00:00Z", "2026-12-05T24:00:00Z", "20261205T080000Z", "1970-01-01T00:00:00Z",
                   "1969-07-20T20:17:40.5Z", "0001-01-01T00:00:00Z", "2019-03-31T01:30:00+01:00"):
        # three times: whatever the import flag's turn, each goes once imported and twice not
        for _ in range(3):
            variant(event_time=moment)
    for days in (29, 31, 400, 3650):
        for _ in range(3):
            variant(event_time=(now - timedelta(days=days)).isoformat())
    for event_id in ("{%s}" % uuid.uuid4(), uuid.uuid4().hex, str(uuid.uuid4()).upper(), "urn:uuid:%s" % uuid.uuid4(),
                     "not-a-uuid", " %s" % uuid.uuid4()):
        variant(event_id=event_id)
    for properties in ({"n": 1, "b": True, "z": None, "l": [1, "\u00e9", {"k": "v"}], "d": {}}, {"f": 1.5},
                       {"u": "\u00e9\U0001F600"}, [], "x", {str(k): "v" for k in range(33)},
                       {str(k): "v" for k in range(32)}, {"s": "a\"b\\c\n\x01\x7f"}, {"emoji": ["\U0001F600"]}):
        variant(properties=properties)
    for field, value in (("user_id", "   "), ("user_id", "\u00a0"), ("user_id", "\u200b"), ("page", ""),
                         ("product_id", ""), ("product_id", None), ("event_type", "view"), ("session_id", 5),
                         ("page", "/\u00e9/\u0085")):
        variant(**{field: value})
    no_amount = _event(rng, now)
    no_amount.pop("amount")
    records.append(json.dumps(no_amount).encode())
    good = json.dumps(_event(rng, now))
    records += [(" \t" + good + "\n").encode(), ("\u00a0" + good).encode(), ("\ufeff" + good).encode(),
                good.encode() + b" x", good.replace('"user_id": "user-1"', '"user_id": "user-1", "user_id": "u-2"').encode(),
                good.encode("utf-16"), good.encode()[:-1], b"   ", b"[1]", b"null",
                good.replace("12.5", "NaN").encode(), good.replace('"page": "/p"', '"page": "\\ud83d\\ude00"').encode(),
                good.encode().replace(b"/p", b"/\xff")]
    return records


def damaged_records(count: int, seed: int) -> list[bytes]:
    """Good records with one random fault each: a byte changed, cut short, a character inserted, a
    field's value swapped for another JSON value, a field removed."""
    rng = random.Random(seed)
    damaged = []
    for record in islice(EventGenerator(seed=seed).records(), count):
        value = bytearray(record.value)
        fault = rng.randrange(5)
        if fault == 0:
            value[rng.randrange(len(value))] = rng.randrange(256)
        elif fault == 1:
            value = value[:rng.randrange(len(value) + 1)]
        elif fault == 2:
            value.insert(rng.randrange(len(value) + 1), rng.choice(b' {}[]",:\\0eE.-+\x00'))
        else:
            event = json.loads(record.value)
            field = rng.choice(list(event))
            if fault == 3:
                event[field] = rng.choice([None, 0, -1, 1.25, "", " ", [], {}, True, 1e300, "2026-12-05T08:00:00Z"])
            else:
                event.pop(field)
            value = bytearray(json.dumps(event).encode())
        damaged.append(bytes(value))
    return damaged


@pytest.fixture(scope="module")
def target(config: Config) -> Iterator[IngestTarget]:
    suffix = uuid.uuid4().hex[:8]
    target = IngestTarget(f"test-validation-{suffix}", f"test-validation-{suffix}", f"raw.test_validation_{suffix}",
                          f"raw.test_validation_rejected_{suffix}", f"test-validation-{suffix}")
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(target.topic, num_partitions=2, replication_factor=config.kafka.replication_factor)])[target.topic].result(30)
    start(config, target)
    yield target
    cancel(config, target.job_name)
    admin.delete_topics([target.topic])[target.topic].result(30)
    catalog = load_catalog(config)
    for table in (target.events_table, target.rejected_table, target.heartbeats_table):
        if catalog.table_exists(table):
            catalog.purge_table(table)


def test_every_record_gets_the_python_rules_verdict_whichever_side_decided(config: Config, target: IngestTarget) -> None:
    now = datetime.now(timezone.utc)
    now_ms = int(now.timestamp() * 1000)
    generated = [r.value for r in islice(EventGenerator(seed=12, faults=FAULTS).records(), 2000)]
    records = edge_records(now) + damaged_records(1500, seed=11) + generated
    producer = make_producer(config)
    landed: dict[tuple[int, int], tuple[bytes, int, int | None]] = {}

    def delivered(error, message, row: int | None) -> None:  # type: ignore[no-untyped-def]
        assert error is None, error
        landed[(message.partition(), message.offset())] = (message.value() or b"", message.timestamp()[1], row)

    for index, record in enumerate(records):
        row = index + 1 if index % 3 == 0 else None
        headers = [] if row is None else [(IMPORT_SHA256_HEADER, b"0" * 64), (IMPORT_FILE_HEADER, b"history/a.jsonl"),
                                          (IMPORT_ROW_HEADER, str(row).encode())]
        producer.produce(target.topic, value=record, headers=headers,
                         on_delivery=lambda error, message, row=row: delivered(error, message, row))
        producer.poll(0)
    assert producer.flush(60) == 0 and len(landed) == len(records)

    # until every record has its row, or nothing new arrived for a minute
    seen, last_change = -1, time.monotonic()
    while time.monotonic() - last_change < 60:
        _, accepted_rows = run_query(config, f"""
            select kafka_partition, kafka_offset, event_id, user_id, session_id, event_type, page, product_id, amount,
                   to_unixtime(event_time) * 1000, properties, import_file, import_row
            from {target.events_table}""")
        _, rejected_rows = run_query(config, f"select kafka_partition, kafka_offset, reason_code, import_row "
                                             f"from {target.rejected_table}")
        if len(accepted_rows) + len(rejected_rows) >= len(records):
            break
        if len(accepted_rows) + len(rejected_rows) != seen:
            seen, last_change = len(accepted_rows) + len(rejected_rows), time.monotonic()
        time.sleep(3)
    accepted = {(p, o): rest for p, o, *rest in accepted_rows}
    rejected = {(p, o): reason for p, o, reason, _ in rejected_rows}
    rejected_rows_marked = {(p, o): row for p, o, _, row in rejected_rows}
    missing = [(position, value[:200], validate(value, timestamp_ms, imported=row is not None))
               for position, (value, timestamp_ms, row) in landed.items()
               if position not in accepted and position not in rejected]
    assert not missing, f"{len(missing)} records have no row: {missing[:5]}"
    assert len(accepted) + len(rejected) == len(accepted_rows) + len(rejected_rows) == len(records)

    wrong = []
    for position, (value, timestamp_ms, row) in landed.items():
        verdict = validate(value, timestamp_ms, imported=row is not None)
        if isinstance(verdict, Accepted):
            expected = [verdict.event_id, verdict.user_id, verdict.session_id, verdict.event_type, verdict.page,
                        verdict.product_id, None if verdict.amount is None else Decimal(verdict.amount),
                        verdict.event_time_ms, verdict.properties, row and "history/a.jsonl", row]
            got = accepted.get(position)
            if got is not None:
                got = [*got[:8], got[8] and dict(got[8]), *got[9:]]
                got[7] = round(got[7])
            if got != expected:
                wrong.append((value[:120], "accepted", expected, got or rejected.get(position)))
        elif (rejected.get(position), rejected_rows_marked.get(position)) != (verdict.reason_code, row):
            wrong.append((value[:120], verdict.reason_code, row, rejected.get(position), accepted.get(position)))
    assert not wrong, f"{len(wrong)} records judged otherwise than by the Python rules: {wrong[:5]}"

    # one fast path and one Python operator serve both sinks: each record is judged once
    job_id = live_jobs(config, target.job_name)[0]
    plan = " ".join(node["description"] for node in FlinkRest(config).job(job_id)["plan"]["nodes"])
    assert (plan.count("Correlate(invocation=[accepted_event("), plan.count("]:PythonCorrelate(")) == (1, 1), plan
    # the fast path decided the plain records: the Python rules saw little more than the bad ones
    deadline = time.monotonic() + 30  # the REST API's metrics are refreshed every 10 s
    while (python_in := FlinkRest(config).operator_records_in(job_id, "PythonCorrelate")) < len(rejected):
        assert time.monotonic() < deadline, f"the Python rules saw {python_in} records; {len(rejected)} were rejected"
        time.sleep(2)
    accepted_by_python = python_in - len(rejected)
    # every record the generator sent was decided in the JVM: only edge and damaged ones went to Python
    assert accepted_by_python <= len(accepted) - len(generated) + sum(
        not isinstance(validate(value, now_ms, imported=index % 3 == 0), Accepted)
        for index, value in enumerate(generated, start=len(records) - len(generated))), accepted_by_python
