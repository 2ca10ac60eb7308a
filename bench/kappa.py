"""Kappa reprocessing on the running platform: replay rate from the earliest offset, time to switch.

    .venv/bin/python -m bench.kappa --events 1000000

N valid events are produced to a fresh topic; then a kappa view of the bench's own (like
events_per_type) is reprocessed at version 1, step by step as `lambdalake kappa reprocess` does:
submit the job, wait until its consumer lag is 0, switch serving. Reported: seconds from the
request to the switch, and the replay rate (events over the seconds from submission until the
lag reached 0). The result is checked: serving's total must equal N.
Each run uses its own topic, view file, table and job, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import save
from bench.schedules import schedules_paused
from lambdalake import kappa, serving, versions
from lambdalake.config import load_config
from lambdalake.generator import EventGenerator
from lambdalake.jobs import cancel
from lambdalake.producer import produce
from lambdalake.query import run_query
from lambdalake.views import VIEWS_DIR


def main(events: int) -> dict[str, object]:
    config = load_config()
    suffix = uuid.uuid4().hex[:8]
    name, topic = f"bench_kappa_{suffix}", f"bench-kappa-{suffix}"
    view_file = VIEWS_DIR / f"{name}.yaml"
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=config.kafka.events_partitions,
                                  replication_factor=config.kafka.replication_factor)])[topic].result(30)
    view_file.write_text(yaml.safe_dump({"name": name, "version": 1, "mode": "kappa", "source": "raw.events",
                                         "bucket": "1 minute", "dimensions": ["event_type"],
                                         "measures": [{"name": "events", "agg": "count"}]}))
    try:
        sent = produce(config, EventGenerator(seed=1), topic, count=events)
        requested = time.monotonic()
        version = kappa.check_request(config, name, 1, topic)
        kappa.start(config, version)
        submitted = time.monotonic()
        kappa.wait_caught_up(config, version, 0, config.kappa.catch_up_timeout, print)
        caught_up = time.monotonic()
        kappa.switch(config, version)
        switched = time.monotonic()
        total = run_query(config, f"select sum(events) from serving.{name}")[1][0][0]
        if total != events:
            raise SystemExit(f"serving.{name} counts {total} events, not {events}")
        return {
            "events": sent.sent,
            "kafka_partitions": config.kafka.events_partitions,
            "parallelism": config.kappa.parallelism,
            "submit_s": round(submitted - requested, 1),
            "replay_s": round(caught_up - submitted, 1),
            "replay_events_per_s": round(events / (caught_up - submitted)),
            "request_to_switch_s": round(switched - requested, 1),
            "checkpoint_interval": config.flink.checkpoint_interval,
        }
    finally:
        cancel(config, kappa.version_job(name, 1))
        serving.drop(config, f"serving.{name}")
        versions.forget(config, name)
        view_file.unlink(missing_ok=True)
        admin.delete_topics([topic])[topic].result(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    with schedules_paused(load_config()):
        result = main(args.events)
    print(json.dumps(result, indent=2))
    save(f"kappa-{args.events // 1000}k", result,
         f"kappa reprocess of {result['events']:,} events: replay {result['replay_events_per_s']:,} events/s from "
         f"the earliest offset, {result['request_to_switch_s']} s from request to switch")
