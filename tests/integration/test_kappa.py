"""Reprocessing on the real engines: a view's logic changes, the log is replayed, serving switches.

A kappa view of the test's own (a file in views/, removed afterwards) is deployed at version 1.
While events stream, its logic changes (a filter and a new measure) and a person triggers
`kappa_reprocess` from its form in the Airflow UI (a real browser: tests/browser.py). Every serving answer must come from exactly one version and not
exceed that version's truth; after the switch serving equals the new logic's truth over every
event ever produced. The truth is computed here in plain Python from the records sent.

A lambda view goes through the same, with its batch layer and a second view sharing its speed
job: after the switch the old speed branch is gone from that job, and the next batch run
recomputes the new logic exactly.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice
from pathlib import Path

import httpx
import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake import history, versions
from lambdalake import serving as serving_layer
from lambdalake.batch import Layers, ensure_serving, run_once
from lambdalake.catalog import load_catalog
from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow, AirflowApi
from lambdalake.generator import EventGenerator, Faults, Record
from lambdalake.ingest import IngestTarget
from lambdalake.janitor import sweep
from lambdalake.jobs import cancel, live_jobs
from lambdalake.kappa import ReprocessError, check_request, live_version, reprocess, table_versions, version_job
from lambdalake.query import run_query
from lambdalake.speed import SpeedTarget
from lambdalake.views import VIEWS_DIR, ViewError, find_view
from tests.browser import airflow_login, chromium, open_form, wait_for_new_run
from tests.integration.conftest import start_both, wait_for_boundary
from tests.integration.test_batch import Stream
from tests.integration.test_speed import first_good_events, floor, send

FAULTS = Faults(late_fraction=0.15, late_max=timedelta(hours=2), duplicate_fraction=0.1, malformed_fraction=0.05)
DAG_ID = "kappa_reprocess"
V1_COLUMNS = ["event_time_bucket", "event_type", "events"]
V2_COLUMNS = ["event_time_bucket", "event_type", "events", "revenue"]


@dataclass(frozen=True)
class KappaView:
    name: str
    topic: str
    mode: str = "kappa"

    @property
    def path(self) -> Path:
        return VIEWS_DIR / f"{self.name}.yaml"

    def define(self, version: int) -> None:
        """Write the view's definition: v1 counts every event type, v2 only page views and
        purchases, with their revenue."""
        definition: dict[str, object] = {"name": self.name, "version": version, "mode": self.mode,
                                         "source": "raw.events", "bucket": "1 minute", "dimensions": ["event_type"],
                                         "measures": [{"name": "events", "agg": "count"}]}
        if version >= 2:
            definition["where"] = {"event_type": ["page_view", "purchase"]}
            definition["measures"].append({"name": "revenue", "agg": "sum", "column": "amount"})  # type: ignore[attr-defined]
        self.path.write_text(yaml.safe_dump(definition))


@pytest.fixture
def view(config: Config) -> Iterator[KappaView]:
    suffix = uuid.uuid4().hex[:8]
    view = KappaView(f"test_kappa_{suffix}", f"test-kappa-{suffix}")
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(view.topic, num_partitions=3, replication_factor=config.kafka.replication_factor)])[view.topic].result(30)
    try:
        yield view
    finally:
        view.path.unlink(missing_ok=True)
        for number in (1, 2):
            cancel(config, version_job(view.name, number))
        serving_layer.drop(config, f"serving.{view.name}")
        versions.forget(config, view.name)
        admin.delete_topics([view.topic])[view.topic].result(30)


def truth(records: list[Record], version: int) -> dict[tuple, tuple]:  # type: ignore[type-arg]
    """(minute, event_type) -> measures, for version 1 or 2 of the test's view."""
    events = first_good_events(records)
    if version == 1:
        return {key: (n,) for key, n in Counter((floor(e["event_time"], 1), e["event_type"]) for e in events).items()}
    totals: dict[tuple, list] = {}  # type: ignore[type-arg]
    for e in events:
        if e["event_type"] in ("page_view", "purchase"):
            row = totals.setdefault((floor(e["event_time"], 1), e["event_type"]), [0, None])
            row[0] += 1
            if e["amount"] is not None:
                row[1] = (row[1] or Decimal(0)) + Decimal(str(e["amount"])).quantize(Decimal("0.01"))
    return {key: tuple(row) for key, row in totals.items()}


def serving(config: Config, view: KappaView) -> tuple[int, dict[tuple, tuple]]:  # type: ignore[type-arg]
    """Which version answered (by the columns it has) and its rows."""
    columns, rows = run_query(config, f"select * from serving.{view.name}")
    version = {tuple(V1_COLUMNS): 1, tuple(V2_COLUMNS): 2}[tuple(columns)]
    return version, {(row[0].astimezone(timezone.utc), row[1]): tuple(row[2:]) for row in rows}


def above(actual: dict, expected: dict) -> list[str]:  # type: ignore[type-arg]
    """Rows where serving exceeds the truth (counted twice, or counted and never sent)."""
    return [f"{key}: {values} > {expected.get(key)}" for key, values in actual.items()
            if key not in expected or any(v is not None and t is not None and v > t
                                          for v, t in zip(values, expected[key]))]


def wait_for_truth(config: Config, view: KappaView, version: int, records: list[Record], timeout: float = 180) -> None:
    expected = truth(records, version)
    deadline = time.monotonic() + timeout
    while (answer := serving(config, view)) != (version, expected):
        assert not above(answer[1], truth(records, answer[0])), above(answer[1], truth(records, answer[0]))[:5]
        assert time.monotonic() < deadline, f"serving never equalled the truth of v{version}"
        time.sleep(3)


def test_reprocessing_switches_serving_atomically_to_the_new_logic(config: Config, view: KappaView) -> None:
    history = list(islice(EventGenerator(seed=41, faults=FAULTS).records(), 2000))
    send(config, view.topic, history)
    view.define(1)
    reprocess(config, view.name, 1, print, topic=view.topic, grace_seconds=0)
    assert live_version(config, view.name) == 1
    wait_for_truth(config, view, 1, history)

    api = AirflowApi(Airflow(config))
    api.prepare_dag(DAG_ID)
    stream = Stream(config, view.topic, EventGenerator(seed=42, faults=FAULTS).records(), rate=100)
    stream.start()
    answered: list[int] = []
    answers: list[tuple[datetime, tuple[int, dict]]] = []  # type: ignore[type-arg]  # (end of query, answer)
    try:
        time.sleep(5)
        view.define(2)  # the user changes the logic and bumps the version
        run_id = trigger_from_the_form(config, {"view": view.name, "version": "2", "topic": view.topic,
                                                "grace_seconds": "5"})

        def check() -> None:  # every answer comes from one version and never exceeds its truth
            version, rows = serving(config, view)
            answers.append((datetime.now(timezone.utc), (version, rows)))
            wrong = above(rows, truth(history + list(stream.sent), version))
            assert not wrong, f"v{version}: {wrong[:5]}"
            answered.append(version)
            again = serving(config, view)  # at once: often unchanged
            # the instant is taken once the answer is in: a snapshot committed while the query ran
            # is in the answer but not yet in `as of` an instant taken before it
            answers.append((datetime.now(timezone.utc), again))

        assert api.wait(DAG_ID, run_id, timeout=400, while_waiting=check) == "success"
        check()
    finally:
        stream.stopping.set()
        stream.join()

    assert answered == sorted(answered) and answered[0] == 1 and answered[-1] == 2, "serving went back to v1"
    assert live_version(config, view.name) == 2
    assert live_jobs(config, version_job(view.name, 1)) == [], "the old version's job still runs"
    assert live_jobs(config, version_job(view.name, 2)), "the new version's job is not running"
    wait_for_truth(config, view, 2, history + stream.sent)
    # answers from before the switch read v1's table: it is kept for the history retention
    assert table_versions(config, view.name) == [1, 2], "the old version's table was dropped within the retention"
    assert_answers_reproduced_as_of(config, view, answers)
    sweep(without_history(config))
    assert table_versions(config, view.name) == [2], "the janitor did not drop the old version's table"


def trigger_from_the_form(config: Config, fields: dict[str, str]) -> str:
    """Log in to Airflow, fill the DAG's trigger form as a person does, click Trigger; the run's id."""
    with chromium() as browser:
        page = airflow_login(config, browser)
        dialog = open_form(page, config, DAG_ID)
        for name, value in fields.items():
            dialog.locator(f"input[name=element_{name}]").fill(value)
        before = datetime.now(timezone.utc)
        dialog.get_by_role("button", name="Trigger").click()
        run = wait_for_new_run(AirflowApi(Airflow(config)), DAG_ID, before)
        assert run["conf"]["view"] == fields["view"] and run["conf"]["version"] == int(fields["version"]), run
        return str(run["dag_run_id"])


def without_history(config: Config) -> Config:
    """The config with no history retention and no grace period: the janitor drops all it may."""
    return dataclasses.replace(config, serving=dataclasses.replace(config.serving, history_retention="0s"),
                               kappa=dataclasses.replace(config.kappa, grace_period=0))


def assert_answers_reproduced_as_of(config: Config, view: KappaView, answers: list, per_view: int = 6) -> None:  # type: ignore[type-arg]
    """`query --as-of` gives back what serving answered, on both sides of the switch. Two equal
    successive answers (one version, totals that only grow) mean the view answered exactly that
    between them (see test_batch)."""
    stable = [first for first, second in zip(answers, answers[1:]) if first[1] == second[1]]
    assert len(stable) >= per_view, f"only {len(stable)} stable answers among {len(answers)}"
    chosen = [stable[round(i * (len(stable) - 1) / (per_view - 1))] for i in range(per_view)]
    for instant, (version, rows) in chosen:
        columns, found = run_query(config, history.rewrite(config, f"select * from serving.{view.name}", instant))
        assert {tuple(V1_COLUMNS): 1, tuple(V2_COLUMNS): 2}[tuple(columns)] == version, f"as of {instant}"
        assert {(r[0].astimezone(timezone.utc), r[1]): tuple(r[2:]) for r in found} == rows, f"as of {instant}"
    assert {version for _, (version, _) in chosen} == {1, 2}, "no chosen instant on one side of the switch"


def test_bad_reprocess_requests_are_refused_before_anything_starts(config: Config, view: KappaView) -> None:
    view.define(1)
    with pytest.raises(ViewError, match="unknown view 'no_such_view'"):
        check_request(config, "no_such_view", 1)
    with pytest.raises(ViewError, match="must be lowercase letters"):
        check_request(config, "events; drop table raw.events", 1)
    with pytest.raises(ReprocessError, match="defines version 1, not 2"):
        check_request(config, view.name, 2)

    # a version not greater than the live one: make a version live without its job
    def make_live(number: int) -> None:
        defined, definition = find_view(view.name)
        versions.make_speed_table(config, f"speed.{view.name}__v{number}", defined, number, definition, "a test's")
        with serving_layer.lock(config, f"serving.{view.name}"):
            serving_layer.publish(config, defined, f"serving.{view.name}", kind="switch",
                                  speed_table=f"speed.{view.name}__v{number}", version=number)

    make_live(1)
    with pytest.raises(ReprocessError, match="not greater than the live version 1"):
        check_request(config, view.name, 1)
    make_live(2)
    cli = subprocess.run([Path(sys.executable).with_name("lambdalake"), "kappa", "reprocess", view.name,
                          "--version", "1"], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and "not greater than the live version 2" in cli.stderr, cli.stderr

    api = AirflowApi(Airflow(config))
    api.prepare_dag(DAG_ID)
    with pytest.raises(httpx.HTTPStatusError) as refused:  # Airflow's form refuses a name with SQL in it
        api.trigger(DAG_ID, {"view": "x'; drop table raw.events --", "version": 2})
    assert refused.value.response.status_code == 400
    run_id = api.trigger(DAG_ID, {"view": "no_such_view", "version": 2, "topic": view.topic})
    assert api.wait(DAG_ID, run_id) == "failed"
    states = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in api.task_instances(DAG_ID, run_id)}
    assert states["validate"] == ("failed", 1), states  # refused at once, not retried
    assert states["start"][0] == "upstream_failed", states
    assert live_jobs(config, version_job("no_such_view", 2)) == []
    assert table_versions(config, view.name) == [1, 2]


@dataclass(frozen=True)
class LambdaDeployment:
    changed: KappaView
    other: KappaView
    layers: Layers
    ingest: IngestTarget
    speed: SpeedTarget


@pytest.fixture
def deployment(config: Config) -> Iterator[LambdaDeployment]:
    """Two lambda views of the test's own, on their own topic, master dataset and shared speed job."""
    suffix = uuid.uuid4().hex[:8]
    topic = f"test-lambda-{suffix}"
    changed, other = KappaView(f"test_lambda_{suffix}", topic, "lambda"), KappaView(f"test_other_{suffix}", topic, "lambda")
    layers = Layers(topic, events_table=f"raw.test_lambda_events_{suffix}",
                    rejected_table=f"raw.test_lambda_rejected_{suffix}")
    ingest = IngestTarget(topic, f"{topic}-ingest", layers.events_table, layers.rejected_table, f"{topic}-ingest")
    speed = SpeedTarget(topic, f"{topic}-speed", f"{topic}-speed", "", (changed.name, other.name))
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=config.kafka.replication_factor)])[topic].result(30)
    api = AirflowApi(Airflow(config))
    api.prepare_dag("batch_recompute")  # paused: a scheduled run would recompute these views from raw.events
    api.client.patch("/dags/batch_recompute", json={"is_paused": True}).raise_for_status()
    try:
        yield LambdaDeployment(changed, other, layers, ingest, speed)
    finally:
        for view in (changed, other):
            view.path.unlink(missing_ok=True)
        for job in (ingest.job_name, speed.job_name, version_job(changed.name, 2)):
            cancel(config, job)
        catalog = load_catalog(config)
        for view in (changed, other):
            serving_layer.drop(config, f"serving.{view.name}")
            versions.forget(config, view.name)
        for table in (layers.events_table, layers.rejected_table):
            if catalog.table_exists(table):
                catalog.purge_table(table)
        admin.delete_topics([topic])[topic].result(30)


@pytest.mark.serial  # a lambda view in views/: every speed job and batch run over all views would take it up
def test_a_lambda_view_is_reprocessed_and_its_batch_layer_follows(config: Config,
                                                                  deployment: LambdaDeployment) -> None:
    changed, other, layers = deployment.changed, deployment.other, deployment.layers
    changed.define(1)
    other.define(1)
    history = list(islice(EventGenerator(seed=43, faults=FAULTS).records(), 2000))
    send(config, layers.topic, history)
    start_both(config, deployment.ingest, deployment.speed)
    ensure_serving(config, layers, [changed.name, other.name])
    with pytest.raises(ReprocessError, match="not greater than the live version 1"):  # the base is v1
        check_request(config, changed.name, 1)
    wait_for_truth(config, changed, 1, history)  # from the speed layer: the ingest job may not have committed yet
    wait_for_boundary(config, layers)
    tables = run_once(config, layers, [changed.name, other.name])
    assert tables[changed.name] and tables[changed.name].startswith(f"batch.{changed.name}__b"), tables
    wait_for_truth(config, changed, 1, history)
    wait_for_truth(config, other, 1, history)

    api = AirflowApi(Airflow(config))
    api.prepare_dag(DAG_ID)
    stream = Stream(config, layers.topic, EventGenerator(seed=44, faults=FAULTS).records(), rate=100)
    stream.start()
    answered: list[int] = []
    try:
        time.sleep(5)
        changed.define(2)
        run_id = api.trigger(DAG_ID, {"view": changed.name, "version": 2, "topic": layers.topic, "grace_seconds": 5})

        def check() -> None:  # the changed view answers from one version; the other is never above its truth
            sent = history + list(stream.sent)
            version, rows = serving(config, changed)
            wrong = above(rows, truth(sent, version))
            assert not wrong, f"{changed.name} v{version}: {wrong[:5]}"
            wrong = above(serving(config, other)[1], truth(sent, 1))
            assert not wrong, f"{other.name}: {wrong[:5]}"
            answered.append(version)

        assert api.wait(DAG_ID, run_id, timeout=400, while_waiting=check) == "success"
        check()
        print("kappa_reprocess task durations (s):",
              {ti["task_id"]: ti["duration"] for ti in api.task_instances(DAG_ID, run_id)})
        # copies of events the shared job saw before its restart: the restarted job still knows them
        send(config, layers.topic, history[:300])
        time.sleep(10)
        check()
    finally:
        stream.stopping.set()
        stream.join()
    last_sent = time.time()
    sent = history + stream.sent + history[:300]

    assert answered == sorted(answered) and answered[0] == 1 and answered[-1] == 2, "serving went back to v1"
    assert live_version(config, changed.name) == 2
    catalog = load_catalog(config)
    # kept for the history retention, then dropped by the janitor
    assert catalog.table_exists(f"speed.{changed.name}"), "the old speed table was dropped within the retention"
    sweep(without_history(config))
    assert not catalog.table_exists(f"speed.{changed.name}"), "the old speed table was not dropped"
    _, left = run_query(config, f"show tables from batch like '{changed.name}\\_\\_b%' escape '\\'")
    assert left == [], f"the old batch tables were not dropped: {left}"
    assert live_jobs(config, version_job(changed.name, 2)), "the new version's job is not running"
    # exact from the first batch run and the speed layer: the restart lost and doubled nothing
    wait_for_truth(config, changed, 2, sent)
    wait_for_truth(config, other, 1, sent)
    assert live_jobs(config, deployment.speed.job_name), "the shared speed job does not run the other view"

    # the next batch run recomputes the new logic; once its boundary passes every record sent,
    # both views are exact from the batch layer alone
    wait_for_boundary(config, layers, after=datetime.fromtimestamp(last_sent, timezone.utc))
    tables = run_once(config, layers, [changed.name, other.name])
    assert tables[changed.name] and tables[changed.name].startswith(f"batch.{changed.name}__v2__b"), tables
    wait_for_truth(config, changed, 2, sent)
    wait_for_truth(config, other, 1, sent)
