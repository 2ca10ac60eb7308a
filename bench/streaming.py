"""The streaming jobs on the running platform: throughput against a plain Kafka consumer, freshness,
serving latency while streaming, and the files a checkpoint interval leaves behind.

    .venv/bin/python -m bench.streaming --job speed --events 2000000 --parallelism 2
    .venv/bin/python -m bench.streaming --job speed --events 200000 --checkpoint-interval "2 s" --name speed-cp2s
    .venv/bin/python -m bench.streaming --job ingest --events 1000000

Start the platform with `LAMBDALAKE__FLINK__METRICS_FETCHER_INTERVAL_MS=1000 lambdalake up` for the
processed rate: Flink's REST API otherwise serves counts up to 10 s old.

1. Throughput: N valid events are produced to a fresh topic. One plain Kafka consumer
   (confluent-kafka, one thread) reads them all, timed; then the job starts and the clock runs
   until Trino sees all N (`raw.events` rows for ingest; the sum of `speed.events_per_type` for
   speed). The sustained rate is taken between the moments 10% and 100% were visible (after
   warm-up). Rows become visible only at checkpoints, so that rate moves in checkpoint steps;
   the processed rate does not: the events/s between the moments the job had processed 10% and
   90% of them, by Flink's own count (records into the ingest job's table writers, or into the
   speed job's dedup), read each second. Both are reported as ratios to two baselines measured
   in the same run: the plain consumer's rate, and Flink's own read of the topic (`raw` format
   into a blackhole, at the job's parallelism; bench/raw_read_job.py), the engine's ceiling on
   this machine.
2. Freshness: while `--rate` events/s stream in, one probe event a second, each on a page of its
   own; seconds from its produce call until Trino finds it (in `serving.page_views_per_page` of
   the bench's own tables, or in raw.events). p50 / p95 / max.
3. Serving latency (speed): with the stream on, a dashboard query, the top 20 pages of the
   last hour from `serving.page_views_per_page`, `--queries` times, and as often the top 20
   page-hours by visitors from `serving.visitors_per_page` (a distinct count answered from
   speed data: every speed row's ids become a sketch). p50 / p95. `--without VIEW` leaves a
   view out of the job, to see what it costs.
4. Files: data files per partition of the written tables at the end, and per hour of streaming.

Each run uses its own topic, tables and job, removed afterwards. Writes bench/results/<name>.json,
PNG plots of throughput over time and of the freshness distribution, and a line in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from itertools import islice
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import RESULTS, remove_run, save
from bench.schedules import schedules_paused
from lambdalake import ingest, jobs, speed
from lambdalake.batch import Layers, ensure_serving
from lambdalake.config import Config, load_config
from lambdalake.flink_rest import FlinkRest
from lambdalake.generator import EventGenerator
from lambdalake.maintenance import files_per_partition
from lambdalake.producer import make_producer, produce
from lambdalake.query import run_query
from lambdalake.views import lambda_views


#: the operators whose input counts what a job has processed: every record reaches one of the ingest
#: job's table writers, every accepted record the speed job's dedup (all of the bench's events are)
PROCESSED_AT = {"ingest": "IcebergStreamWriter", "speed": "ProcessTableFunction"}


def crossing(timeline: list[tuple[float, int]], level: float) -> float | None:
    """The moment a growing count reached level, interpolated between the samples around it."""
    for (t0, n0), (t1, n1) in zip(timeline, timeline[1:]):
        if n1 >= level > n0:
            return t0 + (t1 - t0) * (level - n0) / (n1 - n0)
    return None


def processed_rate(timeline: list[tuple[float, int]], events: int) -> float | None:
    """Events/s the job processed between the moments it had processed 10 % and 90 % of them."""
    low, high = crossing(timeline, events * 0.1), crossing(timeline, events * 0.9)
    return events * 0.8 / (high - low) if low is not None and high is not None and high > low else None


def scalar(config: Config, sql: str) -> int:
    return run_query(config, sql)[1][0][0] or 0


def plain_consumer_rate(config: Config, topic: str, events: int) -> float:
    """Events/s one confluent-kafka consumer reads the whole topic at, from the earliest offset."""
    consumer = Consumer({"bootstrap.servers": config.kafka_bootstrap, "group.id": f"{topic}-plain",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    read, started = 0, None
    while read < events:
        messages = consumer.consume(10_000, timeout=1)
        if messages and started is None:
            started = time.monotonic()  # from the first message: group join is not reading
        read += sum(1 for m in messages if m.error() is None)
    seconds = time.monotonic() - started  # type: ignore[operator]
    consumer.close()
    return events / seconds


RAW_READ_JOB = Path(__file__).with_name("raw_read_job.py")


def flink_raw_rate(config: Config, topic: str, events: int, parallelism: int) -> float:
    """Events/s Flink's own Kafka source reads the whole topic at, with the `raw` format into a
    blackhole (bench/raw_read_job.py), at the job's parallelism: the engine's ceiling here.

    Timed from the source tasks' deployment to their end (Flink's vertex duration), so task
    start-up is in it: a lower bound on the read rate.
    """
    rest, job_name = FlinkRest(config), f"{topic}-raw"
    job_id = jobs.submit_untracked(config, RAW_READ_JOB, ["--topic", topic, "--bootstrap", config.kafka_bootstrap],
                                   job_name, parallelism=parallelism)
    deadline = time.monotonic() + 600
    while (detail := rest.job(job_id))["state"] != "FINISHED":
        if detail["state"] in ("FAILED", "CANCELED") or time.monotonic() > deadline:
            raise RuntimeError(f"the raw-read job {job_id} ended {detail['state']}, not FINISHED; see the Flink UI")
        time.sleep(1)
    source = next(v for v in detail["vertices"] if v["name"].startswith("Source"))
    return events / (source["duration"] / 1000)


def percentile(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return round(samples[0], 2)
    return round(statistics.quantiles(samples, n=100, method="inclusive")[q - 1], 2)


class Background(threading.Thread):
    """Produces `rate` events/s to the topic until stopped: the steady stream freshness is measured in."""

    def __init__(self, config: Config, topic: str, rate: int) -> None:
        super().__init__(daemon=True)
        self.config, self.topic, self.rate = config, topic, rate
        self.stopping = threading.Event()

    def run(self) -> None:
        producer, records = make_producer(self.config), EventGenerator(seed=3).records()
        while not self.stopping.is_set() and self.rate:
            for record in islice(records, max(1, self.rate // 10)):
                producer.produce(self.topic, key=record.key, value=record.value)
            producer.poll(0)
            time.sleep(0.1)
        producer.flush(30)


def plots(name: str, timeline: list[tuple[float, int]], processed: list[tuple[float, int]],
          delays: list[float]) -> list[str]:
    """PNGs next to the result: events visible over time (the slope is the throughput; the steps
    are checkpoints, when the Iceberg sink commits) beside the events the job processed (Flink's
    count), and the distribution of freshness."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.plot([t for t, _ in timeline], [n for _, n in timeline], label="visible in Trino")
    axis.plot([t for t, _ in processed], [n for _, n in processed], label="processed (Flink's count)")
    axis.legend()
    axis.set(xlabel="seconds since job submission", ylabel="events",
             title=f"{name}: throughput (slope)")
    figure.tight_layout()
    figure.savefig(RESULTS / f"{name}-throughput.png")
    made.append(f"{name}-throughput.png")
    if delays:
        figure, axis = plt.subplots(figsize=(7, 3.5))
        axis.hist(delays, bins=20)
        axis.set(xlabel="seconds from produce to visible through Trino", ylabel="probe events",
                 title=f"{name}: freshness")
        figure.tight_layout()
        figure.savefig(RESULTS / f"{name}-freshness.png")
        made.append(f"{name}-freshness.png")
    plt.close("all")
    return made


def memory_per_million_ids(rest: FlinkRest, job_id: str, ids: int) -> dict[str, object]:
    """The job's state (its latest checkpoint's full size) per million distinct event ids, and what
    the TaskManagers hold (heap, managed memory in use): their whole JVMs, other jobs included."""
    checkpoint = rest.latest_checkpoint(job_id) or {}
    held = rest.taskmanager_metrics(["Status.JVM.Memory.Heap.Used", "Status.Flink.Memory.Managed.Used",
                                     "Status.Flink.Memory.Managed.Total"])
    mib = 1024 * 1024
    return {
        "state_mib_per_million_ids": round(checkpoint["state_size"] / mib / (ids / 1e6), 1) if checkpoint else None,
        "taskmanager_heap_used_mib": round(held.get("Status.JVM.Memory.Heap.Used", 0) / mib),
        "taskmanager_managed_used_mib": round(held.get("Status.Flink.Memory.Managed.Used", 0) / mib),
        "taskmanager_managed_total_mib": round(held.get("Status.Flink.Memory.Managed.Total", 0) / mib),
    }


def main(job: str, events: int, samples: int, parallelism: int, rate: int, queries: int,
         settings: dict[str, str], name: str, without: tuple[str, ...] = ()) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-{suffix}"
    serving_tables: list[str] = []
    if job == "ingest":
        target = ingest.IngestTarget(topic, topic, f"raw.bench_events_{suffix}", f"raw.bench_rejected_{suffix}",
                                     f"bench-ingest-{suffix}")
        tables = [target.events_table, target.rejected_table, target.heartbeats_table]
        visible = f"select count(*) from {target.events_table}"
        found = f"select count(*) from {target.events_table} where page = '{{page}}'"
        submit = lambda: ingest.start(config, target, parallelism=parallelism, settings=settings)  # noqa: E731
    else:
        kept = [view for view in lambda_views() if view.name not in without]
        if {"events_per_type", "page_views_per_page"} - {view.name for view in kept}:
            raise SystemExit("--without: the bench reads events_per_type and page_views_per_page; keep both")
        target = speed.SpeedTarget(topic, topic, f"bench-speed-{suffix}", f"__b{suffix}",
                                   views=tuple(view.name for view in kept) if without else ())
        layers = Layers(topic=topic, suffix=target.table_suffix)
        tables = [target.table(view) for view in kept]
        serving_tables = [layers.serving(view) for view in kept]
        visible = f"select sum(events) from speed.events_per_type{target.table_suffix}"
        page_views = f"serving.page_views_per_page{target.table_suffix}"
        found = f"select count(*) from {page_views} where page = '{{page}}'"
        submit = lambda: speed.start(config, target, parallelism=parallelism, settings=settings)  # noqa: E731
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=config.kafka.events_partitions,
                                  replication_factor=config.kafka.replication_factor)])[topic].result(30)
    background = Background(config, topic, rate)
    try:
        sent = produce(config, EventGenerator(seed=1), topic, count=events)
        print(f"produced {sent.sent:,} events at {sent.sent / sent.seconds:,.0f}/s", flush=True)
        consumer_rate = plain_consumer_rate(config, topic, events)
        print(f"one plain consumer read them at {consumer_rate:,.0f} events/s", flush=True)
        raw_rate = flink_raw_rate(config, topic, events, parallelism)
        print(f"Flink's raw read (p{parallelism}, into a blackhole) read them at {raw_rate:,.0f} events/s", flush=True)

        started = time.monotonic()
        job_id = submit()
        if job == "speed":
            ensure_serving(config, layers, [view.name for view in kept])
        timeline, tenth_at, tenth_seen, seen = [(0.0, 0)], None, 0, 0
        processed_timeline, rest = [(0.0, 0)], FlinkRest(config)
        if config.flink.metrics_fetcher_interval_ms > 1000:
            print(f"Flink's metrics are refreshed every {config.flink.metrics_fetcher_interval_ms} ms: the processed "
                  "rate moves in those steps (LAMBDALAKE__FLINK__METRICS_FETCHER_INTERVAL_MS=1000 lambdalake up)",
                  flush=True)
        while seen < events:
            time.sleep(1)
            seen = scalar(config, visible)
            timeline.append((round(time.monotonic() - started, 1), seen))
            # Flink's own count, not held back to the checkpoints that make rows visible
            processed_timeline.append((round(time.monotonic() - started, 2),
                                       rest.operator_records_in(job_id, PROCESSED_AT[job])))
            if tenth_at is None and seen >= events / 10:
                tenth_at, tenth_seen = time.monotonic(), seen
        done = time.monotonic()
        sustained = (events - tenth_seen) / (done - tenth_at) if tenth_at and done > tenth_at else None
        processed = processed_rate(processed_timeline, events)
        print(f"job saw all {events:,} after {done - started:.0f}s; sustained {sustained:,.0f} events/s; "
              f"processed {processed or 0:,.0f} events/s", flush=True)
        memory = memory_per_million_ids(FlinkRest(config), job_id, events)

        background.start()
        producer, delays = make_producer(config), []
        generated = EventGenerator(seed=2).records()
        for _ in range(samples):
            event = json.loads(next(generated).value)
            event.update(event_type="page_view", page=f"/bench/{uuid.uuid4().hex}")
            sent_at = time.monotonic()
            producer.produce(topic, key=event["user_id"].encode(), value=json.dumps(event).encode())
            producer.flush(10)
            while not scalar(config, found.format(page=event["page"])):
                time.sleep(0.1)
            delays.append(time.monotonic() - sent_at)
            time.sleep(max(0.0, 1 - (time.monotonic() - sent_at)))
        print(f"freshness p50 {statistics.median(delays):.2f}s max {max(delays):.2f}s", flush=True)

        latency: list[float] = []
        visitors_latency: list[float] = []
        if job == "speed":
            dashboard = (f"select page, sum(page_views) as views from {page_views} "
                         "where event_time_bucket >= current_timestamp - interval '1' hour "
                         "group by page order by views desc limit 20")
            # the distinct count, answered from speed data: each speed row's ids become a sketch
            visitors = (f"select page, visitors, visitors_is_exact from serving.visitors_per_page{target.table_suffix} "
                        "where event_time_bucket >= current_timestamp - interval '1' hour "
                        "order by visitors desc limit 20")
            for _ in range(queries):
                query_started = time.monotonic()
                run_query(config, dashboard)
                latency.append(time.monotonic() - query_started)
                if "visitors_per_page" not in without:
                    query_started = time.monotonic()
                    run_query(config, visitors)
                    visitors_latency.append(time.monotonic() - query_started)
        streamed_hours = (time.monotonic() - started) / 3600
        files = {table: files_per_partition(config, table) for table in tables}
        checkpoints = FlinkRest(config).checkpoint_config(job_id)
        result: dict[str, object] = {
            "job": job,
            "events": sent.sent,
            "parallelism": parallelism,
            "kafka_partitions": config.kafka.events_partitions,
            "checkpoint_interval_ms": checkpoints.get("interval"),
            "job_settings": settings,
            "speed_window_seconds": config.speed.window_seconds,
            "produce_events_per_s": round(sent.sent / sent.seconds),
            "plain_consumer_events_per_s": round(consumer_rate),
            "job_events_per_s_whole_run": round(events / (done - started)),
            "job_events_per_s_sustained_10_to_100_percent": round(sustained) if sustained else None,
            "ratio_job_to_plain_consumer": round(sustained / consumer_rate, 3) if sustained else None,
            "flink_raw_read_events_per_s": round(raw_rate),
            "ratio_job_to_flink_raw_read": round(sustained / raw_rate, 3) if sustained else None,
            "job_events_per_s_processed_10_to_90_percent": round(processed) if processed else None,
            "flink_metrics_fetcher_interval_ms": config.flink.metrics_fetcher_interval_ms,
            "ratio_processed_to_plain_consumer": round(processed / consumer_rate, 3) if processed else None,
            "ratio_processed_to_flink_raw_read": round(processed / raw_rate, 3) if processed else None,
            "freshness_background_rate_events_per_s": rate,
            "freshness_samples": len(delays),
            "freshness_s_p50": round(statistics.median(delays), 2),
            "freshness_s_p95": percentile(delays, 95),
            "freshness_s_max": round(max(delays), 2),
            "freshness_s_samples": [round(d, 2) for d in delays],
            "serving_dashboard_query": "top 20 pages of the last hour" if latency else None,
            "serving_latency_s_p50": round(statistics.median(latency), 3) if latency else None,
            "serving_latency_s_p95": percentile(latency, 95) if latency else None,
            "views_left_out": list(without),
            "serving_visitors_query": "top 20 page-hours by visitors, last hour" if visitors_latency else None,
            "serving_visitors_latency_s_p50": round(statistics.median(visitors_latency), 3) if visitors_latency else None,
            "serving_visitors_latency_s_p95": percentile(visitors_latency, 95) if visitors_latency else None,
            "files_per_partition": files,
            "streamed_minutes": round(streamed_hours * 60, 1),
            "files_per_partition_per_hour": {t: round(max(f, default=0) / streamed_hours) for t, f in files.items()},
            "throughput_timeline": timeline,
            "processed_timeline": processed_timeline,
            **memory,
        }
        result["plots"] = plots(name, timeline, processed_timeline, delays)
        return result
    finally:
        background.stopping.set()
        remove_run(config, target.job_name, topic, serving_tables, tables)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", choices=("ingest", "speed"), required=True)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--freshness-samples", type=int, default=60)
    parser.add_argument("--rate", type=int, default=500, help="background events/s while freshness is measured")
    parser.add_argument("--queries", type=int, default=50, help="dashboard queries (speed only)")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--checkpoint-interval", help="the job's, e.g. '2 s'; default: the cluster's")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink setting for the job over the cluster's, e.g. 'pipeline.object-reuse=true'")
    parser.add_argument("--name", help="result name; default: <job>-p<parallelism>")
    parser.add_argument("--without", action="append", default=[], metavar="VIEW",
                        help="leave a lambda view out of the speed job (e.g. visitors_per_page, to see its cost)")
    args = parser.parse_args()
    name = args.name or f"{args.job}-p{args.parallelism}"
    settings = jobs.parse_settings(args.setting)
    if args.checkpoint_interval:
        settings["execution.checkpointing.interval"] = args.checkpoint_interval
    with schedules_paused(load_config()):
        result = main(args.job, args.events, args.freshness_samples, args.parallelism, args.rate, args.queries,
                      settings, name, tuple(args.without))
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_timeline")}, indent=2))
    summary = (f"{args.job} job, p{args.parallelism}, {result['events']:,} events: sustained "
               f"{result['job_events_per_s_sustained_10_to_100_percent']:,} events/s = "
               f"{result['ratio_job_to_plain_consumer']} x one plain Kafka consumer "
               f"({result['plain_consumer_events_per_s']:,}/s) = {result['ratio_job_to_flink_raw_read']} x Flink's "
               f"raw read ({result['flink_raw_read_events_per_s']:,}/s); processed "
               f"{result['job_events_per_s_processed_10_to_90_percent'] or 0:,} events/s; freshness p50/p95/max "
               f"{result['freshness_s_p50']}/{result['freshness_s_p95']}/{result['freshness_s_max']} s at "
               f"{args.rate} events/s, checkpoint every {result['checkpoint_interval_ms']} ms")
    if result["state_mib_per_million_ids"] is not None:
        summary += f"; state {result['state_mib_per_million_ids']} MiB per 1M ids"
    if settings:
        summary += "; job settings " + ", ".join(f"{k}={v}" for k, v in settings.items())
    if result["serving_latency_s_p50"] is not None:
        summary += (f"; dashboard query p50/p95 {result['serving_latency_s_p50']}/"
                    f"{result['serving_latency_s_p95']} s")
    if result["serving_visitors_latency_s_p50"] is not None:
        summary += (f"; visitors query p50/p95 {result['serving_visitors_latency_s_p50']}/"
                    f"{result['serving_visitors_latency_s_p95']} s")
    if args.without:
        summary += "; without " + ", ".join(args.without)
    save(name, result, summary)
