"""Where a streaming job spends its CPU: Flink's own flame graphs, sampled while the job works
through a backlog, summed by component.

    .venv/bin/python -m bench.profile --job speed --events 1000000 --parallelism 2
    .venv/bin/python -m bench.profile --job ingest --events 1000000 --parallelism 2

N valid events are produced to a fresh topic; the job (its own topic, tables and job name, removed
afterwards) starts on that backlog. While it runs, the bench asks Flink's REST API for each
operator chain's on-CPU flame graph (`/jobs/<id>/vertices/<v>/flamegraph?type=on_cpu`, on since
`rest.flamegraph.enabled`), as often as Flink refreshes it. Each sampled stack counts once for
the first component named in it, looked up from the innermost frame outwards (COMPONENTS), so a
RocksDB read inside the dedup counts as RocksDB, and Iceberg's Parquet writing as Iceberg. RocksDB's
samples are also counted by the Flink frame that called into it (a map state's iterator, the timer
queue, a value state), which says which state access to cut.

The Python validation workers are processes of their own: their CPU is not in the JVM's flame
graph. The bench samples the TaskManager's and the Python workers' CPU seconds (psutil) over the
same interval, so the split between the JVM and Python is reported too.

Writes bench/results/profile-<job>.json and a line in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections import Counter
from typing import Any

import psutil
from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import remove_run, save
from bench.schedules import schedules_paused
from lambdalake import ingest, jobs, speed
from lambdalake.batch import Layers, ensure_serving
from lambdalake.config import load_config
from lambdalake.flink_rest import FlinkRest
from lambdalake.generator import EventGenerator
from lambdalake.producer import produce
from lambdalake.query import run_query
from lambdalake.views import lambda_views

#: (component, substrings of a frame that name it), matched innermost frame first
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("RocksDB (state)", ("org.rocksdb.", "RocksDB", "rocksdb")),
    ("JSON", ("jackson", "Json", "json")),
    ("Iceberg and Parquet writers", ("org.apache.iceberg.", "org.apache.parquet.")),
    ("Kafka source", ("org.apache.kafka.", "connector.kafka")),
    ("Python bridge (Beam, gRPC, Arrow)", ("org.apache.beam.", "io.grpc", "org.apache.flink.python.",
                                           "org.apache.flink.streaming.api.runners.python", "arrow")),
    ("checkpoints", ("checkpoint", "Checkpoint", "Snapshot")),
    ("serialization", ("Serializer", "serializ", "DataOutput", "DataInput", "BinaryRowData")),
    ("dedup (over window)", ("OverWindow", "RowTimeRange", "over.")),
    ("window aggregation", ("window.", "Window")),
    ("generated code (projections, calcs)", ("StreamExecCalc$", "Projection$", "WatermarkGenerator$",
                                             "org.apache.flink.table.runtime.generated")),
    ("network and mailbox", ("io.network", "netty", "mailbox", "Mailbox")),
]


def component(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, needles in COMPONENTS:
            if any(needle in frame for needle in needles):
                return name
    return "other (JVM, Flink runtime)"


def state_caller(stack: list[str]) -> str | None:
    """For a stack in RocksDB: the innermost Flink frame outside it (which state or timer call), else None."""
    needles = COMPONENTS[0][1]
    inside = False
    for frame in reversed(stack):
        if any(needle in frame for needle in needles):
            inside = True
        elif inside and frame.startswith("org.apache.flink."):
            return frame
    return None


def stacks(node: dict[str, Any], path: list[str]) -> list[tuple[list[str], int]]:
    """(frames from the root, samples) for each node's own samples (its value less its children's)."""
    here = [*path, node["name"]]
    children = node.get("children") or []
    own = node["value"] - sum(child["value"] for child in children)
    found = [(here, own)] if own > 0 else []
    for child in children:
        found += stacks(child, here)
    return found


def flamegraph(rest: FlinkRest, job_id: str, vertex: str) -> tuple[int, dict[str, Any] | None]:
    """(endTimestamp, root) of the vertex's latest on-CPU flame graph; root None until one is ready."""
    data = rest.flamegraph(job_id, vertex, "on_cpu")
    root = data.get("data") or None
    return data.get("endTimestamp", 0), root if root and root.get("value") else None


def processes_cpu() -> dict[str, float]:
    """CPU seconds so far of the TaskManager JVM and of all Python workers (Flink's Beam harness)."""
    totals = {"taskmanager_jvm": 0.0, "python_workers": 0.0}
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        try:
            if "TaskManagerRunner" in cmdline:
                times = process.cpu_times()
                totals["taskmanager_jvm"] += times.user + times.system
            elif "pyflink.fn_execution" in cmdline or "beam_boot" in cmdline:
                times = process.cpu_times()
                totals["python_workers"] += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return totals


def main(job: str, events: int, parallelism: int, settings: dict[str, str]) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-profile-{suffix}"
    serving_tables: list[str] = []
    if job == "ingest":
        target = ingest.IngestTarget(topic, topic, f"raw.bench_events_{suffix}", f"raw.bench_rejected_{suffix}",
                                     f"bench-profile-ingest-{suffix}")
        tables = [target.events_table, target.rejected_table, target.heartbeats_table]
        visible = f"select count(*) from {target.events_table}"
        submit = lambda: ingest.start(config, target, parallelism=parallelism, settings=settings)  # noqa: E731
    else:
        target = speed.SpeedTarget(topic, topic, f"bench-profile-speed-{suffix}", f"__p{suffix}")
        layers = Layers(topic=topic, suffix=target.table_suffix)
        tables = [target.table(view) for view in lambda_views()]
        serving_tables = [layers.serving(view) for view in lambda_views()]
        visible = f"select sum(events) from speed.events_per_type{target.table_suffix}"
        submit = lambda: speed.start(config, target, parallelism=parallelism, settings=settings)  # noqa: E731
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=config.kafka.events_partitions,
                                  replication_factor=config.kafka.replication_factor)])[topic].result(30)
    try:
        sent = produce(config, EventGenerator(seed=1), topic, count=events)
        print(f"produced {sent.sent:,} events", flush=True)
        started = time.monotonic()
        job_id = submit()
        if job == "speed":
            ensure_serving(config, layers)
        rest = FlinkRest(config)
        vertices = {v["id"]: v["name"] for v in rest.job(job_id, timeout=30)["vertices"]}
        seen_graphs: dict[str, int] = {}
        by_vertex: dict[str, Counter[str]] = {vertex: Counter() for vertex in vertices}
        callers: Counter[str] = Counter()
        cpu_before = processes_cpu()
        while (run_query(config, visible)[1][0][0] or 0) < events:
            for vertex in vertices:
                at, root = flamegraph(rest, job_id, vertex)
                if root is not None and seen_graphs.get(vertex) != at:  # a new sample, not the cached one
                    seen_graphs[vertex] = at
                    for frames, samples in stacks(root, []):
                        by_vertex[vertex][component(frames)] += samples
                        if (caller := state_caller(frames)) is not None:
                            callers[caller] += samples
            time.sleep(2)
        done = time.monotonic()
        cpu_after = processes_cpu()
        print(f"the job saw all {events:,} events after {done - started:.0f}s", flush=True)
        cpu = {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after}
        total = Counter[str]()
        for counts in by_vertex.values():
            total.update(counts)
        samples = sum(total.values())
        shares = {name: round(100 * count / samples, 1) for name, count in total.most_common()} if samples else {}
        return {
            "job": job,
            "events": sent.sent,
            "parallelism": parallelism,
            "job_settings": settings,
            "seconds_to_see_all": round(done - started, 1),
            "cpu_seconds_while_profiled": cpu,
            "cpu_seconds_per_million_events": {name: round(s * 1_000_000 / events, 1) for name, s in cpu.items()},
            "flamegraph_samples": samples,
            "jvm_on_cpu_percent_by_component": shares,
            "by_operator_chain": {vertices[v][:120]: dict(c.most_common(6)) for v, c in by_vertex.items()},
            # which state and timer calls the RocksDB samples come from
            "rocksdb_samples_by_flink_caller": dict(callers.most_common(12)),
        }
    finally:
        remove_run(config, target.job_name, topic, serving_tables, tables)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", choices=("ingest", "speed"), required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink setting for the job over the cluster's, e.g. 'pipeline.object-reuse=true'")
    args = parser.parse_args()
    settings = jobs.parse_settings(args.setting)
    with schedules_paused(load_config()):
        result = main(args.job, args.events, args.parallelism, settings)
    import json

    print(json.dumps(result, indent=2))
    shares = result["jvm_on_cpu_percent_by_component"]
    top = ", ".join(f"{name} {share}%" for name, share in list(shares.items())[:5])  # type: ignore[union-attr]
    cpu = result["cpu_seconds_per_million_events"]
    summary = (f"profile of the {args.job} job, p{args.parallelism}, {result['events']:,} events: CPU s per 1M "
               f"events {cpu}; JVM on-CPU samples by component: {top}")
    if settings:
        summary += "; job settings " + ", ".join(f"{k}={v}" for k, v in settings.items())
    save(f"profile-{args.job}", result, summary)
