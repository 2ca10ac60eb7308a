"""`lambdalake demo`: the platform end to end, as far as it goes today.

1. One table in the shared Iceberg catalog, written by pyiceberg and read back through Trino
   and through a PyFlink job on the Flink cluster: the three engines share one catalog.
2. The master dataset: the ingest job running, clickstream events with every kind of fault
   produced to Kafka, and Trino showing that each record landed in `raw.events` or, with its
   reason, in `raw.events_rejected`.
3. The speed layer: the speed job's views in `speed.*`, counting each event once.
4. The batch and serving layers: `batch_recompute` triggered through Airflow's REST API, and
   a `serving.*` result printed beside its batch part, its speed part and the boundary.
5. Distinct counts: `serving.visitors_per_page`, exact or flagged an estimate per bucket, and the
   accuracy report of the batch run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.engines.flink import Flink
from lambdalake.errors import EngineError
from lambdalake.generator import EventGenerator, Faults
from lambdalake.ingest import IngestTarget, start
from lambdalake.producer import produce
from lambdalake.query import run_query
from lambdalake.speed import SpeedTarget
from lambdalake.speed import start as start_speed

DEMO_TABLE = "meta.demo_roundtrip"


def write_demo_rows(config: Config) -> list[dict[str, Any]]:
    """(Re)create the demo table through pyiceberg and append three rows; return them."""
    import pyarrow as pa

    rows = [
        {"engine_id": 1, "engine": "kafka", "layer": "log"},
        {"engine_id": 2, "engine": "flink", "layer": "speed"},
        {"engine_id": 3, "engine": "trino", "layer": "serving"},
    ]
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        pa.field("engine_id", pa.int64(), nullable=False),
        pa.field("engine", pa.string()),
        pa.field("layer", pa.string()),
    ]))
    catalog = load_catalog(config)
    if catalog.table_exists(DEMO_TABLE):
        catalog.drop_table(DEMO_TABLE)
    catalog.create_table(DEMO_TABLE, schema=table.schema).append(table)
    return rows


def _ingested(config: Config) -> int:
    _, rows = run_query(config, "select (select count(*) from raw.events) + (select count(*) from raw.events_rejected)")
    return rows[0][0]


def ingest_demo(config: Config, say: Callable[[str], None], records: int = 5000, timeout: float = 180) -> None:
    job_id = start(config, IngestTarget.default(config))
    say(f"ingest job {job_id} runs (Flink UI: http://{config.host}:{config.flink.rest_port})")
    before = _ingested(config)
    faults = Faults(late_fraction=0.1, duplicate_fraction=0.05, malformed_fraction=0.1, late_max=timedelta(hours=2))
    sent = produce(config, EventGenerator(seed=int(time.time()), faults=faults), config.kafka.events_topic,
                   count=records)
    say(f"produced {sent.sent} records to Kafka: {sent.expected_accepted} good (late and duplicates included), "
        f"{sum(sent.expected_rejected.values())} bad of {len(sent.expected_rejected)} kinds")
    deadline = time.monotonic() + timeout
    while _ingested(config) < before + sent.sent:
        if time.monotonic() > deadline:
            raise EngineError(f"the ingest job did not catch up in {timeout:.0f}s; see the Flink UI")
        time.sleep(1)
    _, rows = run_query(config, "select event_type, count(*) from raw.events group by 1 order by 2 desc")
    say("Trino: lake.raw.events by event_type")
    for event_type, n in rows:
        say(f"  {event_type:<14} {n}")
    _, rows = run_query(config, "select reason_code, count(*) from raw.events_rejected group by 1 order by 2 desc")
    say("Trino: lake.raw.events_rejected by reason")
    for reason, n in rows:
        say(f"  {reason:<20} {n}")


def run_demo(config: Config, say: Callable[[str], None]) -> None:
    rows = write_demo_rows(config)
    say(f"pyiceberg wrote {len(rows)} rows to {config.iceberg.catalog_name}.{DEMO_TABLE}")

    columns, trino_rows = run_query(config, f"select * from {DEMO_TABLE} order by engine_id")
    say(f"Trino reads {len(trino_rows)} rows:")
    say("  " + " | ".join(columns))
    for row in trino_rows:
        say("  " + " | ".join(str(v) for v in row))

    columns, flink_rows = Flink(config).sql(f"SELECT * FROM {DEMO_TABLE}")
    say(f"Flink SQL (a PyFlink job on the session cluster) reads {len(flink_rows)} rows:")
    say("  " + " | ".join(columns))
    for row in sorted(flink_rows):
        say("  " + " | ".join(str(v) for v in row))

    ingest_demo(config, say)
    speed_demo(config, say)
    batch_demo(config, say)
    distinct_demo(config, say)
    say(f"everything keeps running. Airflow: http://{config.host}:{config.airflow.port} (user "
        f"{config.airflow.admin_user}, password in {config.data_dir / 'airflow' / 'secrets.json'}), "
        f"Flink: http://{config.host}:{config.flink.rest_port}, Trino: http://{config.host}:{config.trino.port}")


def batch_demo(config: Config, say: Callable[[str], None], timeout: float = 300) -> None:
    from lambdalake import serving
    from lambdalake.batch import Layers, ensure_serving
    from lambdalake.engines.airflow import Airflow, AirflowApi
    from lambdalake.views import load_views

    layers = Layers(topic=config.kafka.events_topic)
    ensure_serving(config, layers)
    api = AirflowApi(Airflow(config))
    api.prepare_dag("batch_recompute")
    run_id = api.trigger("batch_recompute")
    say(f"triggered batch_recompute through Airflow's REST API (run {run_id})")
    if api.wait("batch_recompute", run_id, timeout=timeout) != "success":
        raise EngineError(f"batch_recompute run {run_id} failed; see its logs in the Airflow UI")
    view = next(v for v in load_views() if v.name == "events_per_type")
    live = serving.live(config, layers.serving(view))
    if live is None or live.boundary is None:
        raise EngineError(f"batch_recompute run {run_id} succeeded but swapped no batch table in; see its logs")
    boundary = live.boundary
    say(f"serving.events_per_type = batch below B={boundary:%Y-%m-%d %H:%M} UTC + speed from B on "
        f"(the state store's record: lambdalake_serving, step {live.step_id}):")
    _, rows = run_query(config, f"""
        with batch as (select event_type, sum(events) as n from {live.batch_table} group by 1),
        speed as (select event_type, sum(events) as n from {live.speed_table}
                  where ingest_bucket >= timestamp '{boundary:%Y-%m-%d %H:%M:%S} UTC' group by 1),
        serving as (select event_type, sum(events) as n from {layers.serving(view)} group by 1)
        select s.event_type, coalesce(b.n, 0), coalesce(p.n, 0), s.n
        from serving s left join batch b on b.event_type = s.event_type
        left join speed p on p.event_type = s.event_type order by 4 desc""")
    say(f"  {'event_type':<14} {'batch':>8} {'speed':>8} {'serving':>8}")
    for event_type, batch_n, speed_n, serving_n in rows:
        say(f"  {event_type:<14} {batch_n:>8} {speed_n:>8} {serving_n:>8}")


def distinct_demo(config: Config, say: Callable[[str], None]) -> None:
    """visitors_per_page, the view that needs Lambda: exact where batch answers, flagged where speed
    does; then the accuracy report of the batch run just made."""
    from lambdalake.accuracy import report

    say("serving.visitors_per_page: unique users per page per hour; the five largest, and whether exact "
        "(batch alone) or a HyperLogLog estimate (speed data included)")
    _, rows = run_query(config, "select event_time_bucket, page, visitors, visitors_is_exact "
                                "from serving.visitors_per_page order by visitors desc, page limit 5")
    for bucket, page, visitors, exact in rows:
        say(f"  {bucket:%Y-%m-%d %H:%M} {page:<14} {visitors:>6} {'exact' if exact else 'estimate'}")
    for spread in report(config, "serving.visitors_per_page"):
        say(f"accuracy report (lambdalake accuracy visitors_per_page): {spread.measure}: {spread.buckets} buckets, "
            f"{spread.differing} where speed and batch differed, max relative error {spread.max or 0:.2%}")


def speed_demo(config: Config, say: Callable[[str], None], timeout: float = 180) -> None:
    job_id = start_speed(config, SpeedTarget.default(config))
    say(f"speed job {job_id} runs; waiting for speed.events_per_type to count every distinct event")
    deadline = time.monotonic() + timeout
    query = ("select (select count(distinct event_id) from raw.events), "
             "(select coalesce(sum(events), 0) from speed.events_per_type)")
    while (counts := run_query(config, query)[1][0])[0] != counts[1]:
        if time.monotonic() > deadline:
            raise EngineError(f"speed.events_per_type counts {counts[1]}, raw.events holds {counts[0]} distinct "
                              f"events after {timeout:.0f}s; see the Flink UI")
        time.sleep(2)
    say(f"raw.events holds {counts[0]} distinct events; speed.events_per_type counts {counts[1]}")
    _, rows = run_query(config, "select page, sum(page_views) from speed.page_views_per_page "
                                "group by 1 order by 2 desc limit 5")
    say("Trino: the five most viewed pages, from speed.page_views_per_page")
    for page, n in rows:
        say(f"  {page:<14} {n}")
