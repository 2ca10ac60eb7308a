"""The speed layer's dedup function on the real Flink cluster, against the rule computed here.

Copies of each event in any partition, several stamped in the same millisecond, chains of copies
each within the horizon of the one before, and every copy read in a random order (as a job reading
a backlog of several partitions may): the copies that count must be exactly those the README's rule
picks (a copy counts unless an earlier copy, by timestamp then partition and offset, was stamped
at most the horizon before it). Each copy has a page of its own, so the test sees which copy won.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

from lambdalake.config import Config
from lambdalake.engines.flink import Flink

JOB = Path(__file__).with_name("first_copies_job.py")
HORIZON_SECONDS = 3


@dataclass(frozen=True)
class Copy:
    event_id: str
    page: str
    ingest_ms: int
    partition: int
    offset: int


def copies(seed: int, events: int) -> list[Copy]:
    """1-5 copies per event, in 3 partitions whose offsets grow with their timestamps, as Kafka's
    do: a third of the later copies in the same millisecond as the one before, the others 50 ms to
    4 s after it, so some chains outlast the horizon."""
    rng = random.Random(seed)
    start = 1_767_225_600_000
    stamped = []
    for event in range(events):
        ingest_ms = start + 50 * rng.randint(0, 200)
        for _ in range(rng.randint(1, 5)):
            stamped.append((ingest_ms, rng.randint(0, 2), f"e{event}"))
            ingest_ms += 0 if rng.random() < 1 / 3 else 50 * rng.randint(1, 80)
    stamped.sort()
    offsets = [0, 0, 0]
    result = []
    for number, (ingest_ms, partition, event_id) in enumerate(stamped):
        result.append(Copy(event_id, f"/copy-{number}", ingest_ms, partition, offsets[partition]))
        offsets[partition] += 1
    return result


def counted_by_the_rule(listed: list[Copy], horizon_seconds: int) -> set[str]:
    last_seen: dict[str, int] = {}
    counted = set()
    for copy in sorted(listed, key=lambda c: (c.ingest_ms, c.partition, c.offset)):
        previous = last_seen.get(copy.event_id)
        if previous is None or copy.ingest_ms - previous > horizon_seconds * 1000:
            counted.add(copy.page)
        last_seen[copy.event_id] = copy.ingest_ms
    return counted


def test_first_copies_picks_the_copy_the_rule_picks_whatever_order_it_reads_them(config: Config, tmp_path: Path) -> None:
    listed = copies(seed=17, events=600)
    rng = random.Random(18)
    rng.shuffle(listed)  # read in any order: partitions interleaved, a backlog read late
    path = tmp_path / "copies.csv"
    with path.open("w", newline="") as file:
        csv.writer(file).writerows((c.event_id, c.page, c.ingest_ms, c.partition, c.offset) for c in listed)
    ties = len(listed) - len({(c.event_id, c.ingest_ms) for c in listed})
    assert ties > 20, "the input has too few copies of one event in one millisecond to test the tie-break"

    proc = Flink(config).run_python_job(JOB, "--path", str(path), "--horizon-seconds", str(HORIZON_SECONDS))
    counted = [json.loads(line)["counted"] for line in proc.stdout.splitlines() if line.startswith('{"counted"')]

    expected = counted_by_the_rule(listed, HORIZON_SECONDS)
    pages = [page for _, page, _ in counted]
    assert len(pages) == len(set(pages)), "a copy was emitted twice"
    assert set(pages) == expected, (f"{len(set(pages) - expected)} counted that the rule does not count, "
                                    f"{len(expected - set(pages))} missed")
    # every event counts at least once, and chains longer than the horizon count more than once
    assert {event_id for event_id, _, _ in counted} == {c.event_id for c in listed}
    assert len(expected) > len({c.event_id for c in listed})
