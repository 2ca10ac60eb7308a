"""Recovery after restarts, on the running platform: seconds until every job runs again, and until
serving is fresh again.

    .venv/bin/python -m bench.recovery --faults jobmanager down-up host --runs 1

An ingest job and a speed job of the bench's own (own topic, tables and serving views) run while
`--rate` events/s stream in. One probe event a second goes to a page of its own; a poller asks
Trino every half second which probes `serving.page_views_per_page` (the bench's copy) shows, so
freshness at any instant is the age of the newest probe visible. Then, for each fault:

- `jobmanager`: the JobManager's process group gets SIGKILL (supervisord restarts it; the keeper
  resubmits the jobs). Timed from the kill.
- `down-up`: `lambdalake down`, then `lambdalake up`. Timed from the start of `up`.
- `host`: every process of the platform gets SIGKILL with its process group, then
  `lambdalake up`. Timed from the start of `up`.

Reported per fault: seconds to every job RUNNING again (new Flink job ids), and to freshness back
under `--target` (the first poll, once every job runs, at which the newest visible probe is at most
that old); beside them, the freshness measured in the same run before the first fault (median)
and how long `down` and `up` took. Medians over `--runs`. Writes bench/results/<name>.json and a
line in BENCHMARKS.md. The bench's jobs, topic and tables are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import save
from bench.streaming import Background
from lambdalake import ingest, jobs, speed
from lambdalake.batch import Layers, drop_layers, ensure_serving
from lambdalake.config import Config, load_config
from lambdalake.generator import EventGenerator
from lambdalake.producer import make_producer
from lambdalake.query import run_query
from lambdalake.supervisor import Supervisor
from lambdalake.views import lambda_views

LAMBDALAKE = str(Path(sys.executable).parent / "lambdalake")
FAULTS = ("jobmanager", "down-up", "host")


@dataclass
class Probes:
    """Probe events sent once a second, and when each was first seen in serving."""

    config: Config
    topic: str
    serving: str
    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    #: (monotonic time, age of the newest visible probe) at each successful poll
    freshness: list[tuple[float, float]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def send_forever(self) -> None:
        producer, generated = make_producer(self.config), EventGenerator(seed=7).records()
        for n in count():
            if self.stopping.is_set():
                return
            event = json.loads(next(generated).value)
            page = f"/probe/{n}"
            event.update(event_type="page_view", page=page)
            self.sent[page] = time.monotonic()
            try:
                producer.produce(self.topic, key=event["user_id"].encode(), value=json.dumps(event).encode())
                producer.poll(0)
            except BufferError:  # Kafka down long enough to fill the queue: this probe is lost
                pass
            time.sleep(1)

    def poll_forever(self) -> None:
        sql = f"select distinct page from {self.serving} where page like '/probe/%'"
        while not self.stopping.is_set():
            try:
                pages = [row[0] for row in run_query(self.config, sql)[1]]
            except Exception:  # noqa: BLE001 - Trino or the catalog restarting: the gap is the measurement
                time.sleep(0.5)
                continue
            now = time.monotonic()
            for page in pages:
                self.seen.setdefault(page, now)
            newest = max((self.sent[p] for p in pages if p in self.sent), default=None)
            if newest is not None:
                self.freshness.append((now, now - newest))
            time.sleep(0.5)

    def fresh_since(self, since: float, target: float) -> float | None:
        """The first poll at or after since at which freshness was at most target."""
        return next((t for t, age in self.freshness if t >= since and age <= target), None)


def job_ids(config: Config, names: list[str]) -> dict[str, str] | None:
    """The live ids of the named jobs if every one is RUNNING; None otherwise (or while Flink is down)."""
    try:
        states, live = jobs.job_states(config), jobs.live_job_ids(config)
    except Exception:  # noqa: BLE001 - the JobManager restarting
        return None
    if all(states.get(name) == "RUNNING" for name in names):
        return {name: live[name] for name in names}
    return None


def wait_running(config: Config, names: list[str], before: dict[str, str], timeout: float = 900) -> float:
    """Block until every named job runs under a new job id; return when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = job_ids(config, names)
        if ids and all(ids[name] != before[name] for name in names):
            return time.monotonic()
        time.sleep(0.5)
    raise TimeoutError(f"the jobs {names} were not running again after {timeout:.0f}s")


def cli(*args: str) -> float:
    """Run a lambdalake verb; return its seconds."""
    started = time.monotonic()
    subprocess.run([LAMBDALAKE, *args], check=True, capture_output=True, text=True, timeout=900)
    return time.monotonic() - started


def inject(config: Config, fault: str) -> tuple[float, dict[str, float]]:
    """Cause the fault; return the instant recovery is timed from and the seconds of down/up."""
    if fault == "jobmanager":
        started = time.monotonic()
        Supervisor(config).crash("StandaloneSessionClusterEntrypoint")
        return started, {}
    extra = {}
    if fault == "down-up":
        extra["down_s"] = round(cli("down"), 1)
    else:
        Supervisor(config).crash()
    started = time.monotonic()
    extra["up_s"] = round(cli("up"), 1)
    return started, extra


def main(faults: list[str], runs: int, rate: int, target: float, settle: float) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-recovery-{suffix}"
    layers = Layers(topic=topic, events_table=f"raw.bench_recovery_events_{suffix}",
                    rejected_table=f"raw.bench_recovery_rejected_{suffix}", suffix=f"__r{suffix}")
    ingest_target = ingest.IngestTarget(topic, f"{topic}-ingest", layers.events_table, layers.rejected_table,
                                        f"{topic}-ingest")
    speed_target = speed.SpeedTarget(topic, f"{topic}-speed", f"{topic}-speed", layers.suffix)
    names = [ingest_target.job_name, speed_target.job_name]
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=config.kafka.events_partitions,
                                  replication_factor=config.kafka.replication_factor)])[topic].result(30)
    page_views = next(view for view in lambda_views() if view.name == "page_views_per_page")
    probes = Probes(config, topic, layers.serving(page_views))
    background = Background(config, topic, rate)
    threads = [threading.Thread(target=probes.send_forever, daemon=True),
               threading.Thread(target=probes.poll_forever, daemon=True)]
    measured: dict[str, list[dict[str, float]]] = {fault: [] for fault in faults}
    try:
        ingest.start(config, ingest_target)
        speed.start(config, speed_target)
        ensure_serving(config, layers)
        background.start()
        for thread in threads:
            thread.start()
        before = wait_running(config, names, {name: "" for name in names})
        time.sleep(settle)
        steady = [age for t, age in probes.freshness if t >= before + settle / 2]
        print(f"steady freshness p50 {statistics.median(steady):.1f}s over {len(steady)} polls", flush=True)
        for _ in range(runs):
            for fault in faults:
                ids = job_ids(config, names)
                assert ids, "the jobs do not all run before the fault"
                started, extra = inject(config, fault)
                running = wait_running(config, names, ids)
                fresh = None
                deadline = time.monotonic() + 600
                while fresh is None and time.monotonic() < deadline:
                    time.sleep(1)
                    fresh = probes.fresh_since(running, target)
                sample = {"jobs_running_s": round(running - started, 1),
                          "fresh_s": round(fresh - started, 1) if fresh else None, **extra}
                print(f"{fault}: {sample}", flush=True)
                measured[fault].append(sample)
                time.sleep(settle)  # steady again before the next fault
        return {
            "events_per_s": rate,
            "kafka_partitions": config.kafka.events_partitions,
            "jobs": names,
            "freshness_target_s": target,
            "steady_freshness_s_p50": round(statistics.median(steady), 2),
            "runs": runs,
            "faults": {fault: {
                "jobs_running_s_median": statistics.median(s["jobs_running_s"] for s in samples),
                "fresh_s_median": (statistics.median(s["fresh_s"] for s in samples)
                                   if all(s["fresh_s"] is not None for s in samples) else None),
                "samples": samples} for fault, samples in measured.items()},
        }
    finally:
        probes.stopping.set()
        background.stopping.set()
        for name in names:
            jobs.cancel(config, name)
        admin.delete_topics([topic])[topic].result(30)
        drop_layers(config, layers)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rate", type=int, default=200, help="background events/s")
    parser.add_argument("--target", type=float, default=10.0, help="freshness target, seconds")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds of steady streaming before each fault")
    parser.add_argument("--name", default="recovery")
    args = parser.parse_args()
    result = main(args.faults, args.runs, args.rate, args.target, args.settle)
    print(json.dumps(result, indent=2))
    summary = "; ".join(
        f"{fault}: jobs running after {m['jobs_running_s_median']} s, freshness under {args.target:g} s after "
        f"{m['fresh_s_median']} s" for fault, m in result["faults"].items())  # type: ignore[attr-defined]
    save(args.name, result, f"{summary} (steady freshness p50 {result['steady_freshness_s_p50']} s, "
                            f"{args.rate} events/s, median of {args.runs} run(s))")
