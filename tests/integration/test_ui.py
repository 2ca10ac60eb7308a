"""The platform's UIs as a person uses them, in a real browser.

Playwright drives Debian's chromium-headless-shell (tests/browser.py). The tests log in to
Airflow, open each DAG and its docs, trigger `batch_recompute`, `iceberg_maintenance` and
`speed_layer` from their forms with the defaults, submit a bad param and read the message, find
a run's queries by their source in Trino's UI, open a running Flink job's flame graph, and open
lambdalake's dashboard from Airflow's navigation. While the platform's speed job is stopped, the
`platform_health` DAG fails naming a view behind its target, and succeeds once it runs again.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from lambdalake import jobs, serving, versions
from lambdalake.batch import ensure_serving, layers_from
from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow, AirflowApi
from lambdalake.engines.flink import Flink
from lambdalake.freshness import feeding_job, measure
from lambdalake.generator import EventGenerator
from lambdalake.producer import produce
from lambdalake.tables import ensure_table
from lambdalake.views import VIEWS_DIR, find_view, load_views
from tests.browser import VIEWPORT, airflow_login, chromium, open_form, trino_login, wait_for_new_run
from tests.integration.conftest import LAMBDALAKE

DAGS = ("batch_recompute", "kappa_reprocess", "iceberg_maintenance", "platform_health", "speed_layer")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def airflow_page(config: Config, browser: Browser) -> Iterator[Page]:
    page = airflow_login(config, browser)
    yield page
    page.close()


def test_each_dag_opens_with_its_docs_and_its_form_triggers_with_the_defaults(config: Config,
                                                                              airflow_page: Page) -> None:
    for dag_id in DAGS:
        airflow_page.goto(f"{Airflow(config).url}/dags/{dag_id}")
        airflow_page.get_by_role("button", name="Dag Docs").click()
        docs = airflow_page.get_by_role("dialog")
        heading = {"batch_recompute": "Batch recompute", "kappa_reprocess": "Reprocess",
                   "iceberg_maintenance": "Iceberg maintenance", "platform_health": "Platform health",
                   "speed_layer": "Speed layer"}[dag_id]
        expect(docs.get_by_role("heading", name=re.compile(heading, re.IGNORECASE)).first).to_be_visible()
        airflow_page.keyboard.press("Escape")
        if dag_id == "kappa_reprocess":  # the view has no sensible default: required, offered as a list
            dialog = open_form(airflow_page, config, dag_id)
            expect(dialog.get_by_text("This field is required")).to_be_visible()
            expect(dialog.get_by_role("button", name="Trigger")).to_be_disabled()
            # the input's list of suggestions (a <datalist>): the views in views/
            offered = dialog.locator("datalist option").evaluate_all("options => options.map(o => o.value)")
            assert {"events_per_type", "page_views_per_page"} <= set(offered), offered
            airflow_page.keyboard.press("Escape")
            continue
        dialog = open_form(airflow_page, config, dag_id)
        expect(dialog.get_by_role("button", name="Trigger")).to_be_enabled()
        airflow_page.keyboard.press("Escape")


@pytest.mark.serial  # iceberg_maintenance's defaults maintain every table, and another test's may be dropped meanwhile
def test_dags_triggered_from_their_forms_succeed_and_trino_shows_their_queries_by_source(
        config: Config, airflow_page: Page, browser: Browser) -> None:
    for table in ("raw.events", "raw.events_rejected"):  # as after `make demo`
        ensure_table(config, table)
    api = AirflowApi(Airflow(config))
    for dag_id in ("batch_recompute", "iceberg_maintenance"):
        before = datetime.now(timezone.utc)
        dialog = open_form(airflow_page, config, dag_id)
        dialog.get_by_role("button", name="Trigger").click()
        run = wait_for_new_run(api, dag_id, before)
        assert api.wait(dag_id, run["dag_run_id"]) == "success", run

    trino = trino_login(config, browser)
    try:
        search = trino.get_by_placeholder(re.compile("User, source, query ID"))
        trino.get_by_role("button", name="Finished").click()  # the list shows running and queued ones only
        search.fill("lambdalake-airflow iceberg_maintenance")
        # the source, cut to the column's width
        expect(trino.get_by_text(re.compile("lambdalake-airflow iceberg_maint")).first).to_be_visible(
            timeout=30_000)
        # and the other way round: the maintenance of the master dataset, shown with its source
        search.fill('"raw"."events$partitions"')
        expect(trino.get_by_text(re.compile("lambdalake-airflow iceberg_maint")).first).to_be_visible()
    finally:
        trino.close()


@pytest.fixture
def strict_view(config: Config) -> Iterator[str]:
    """A lambda view of the test's own with a 1 s freshness target, in views/ (so the platform's
    speed job feeds it and `platform_health` checks it), removed afterwards."""
    name = f"test_health_{uuid.uuid4().hex[:8]}"
    path = VIEWS_DIR / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "version": 1, "mode": "lambda", "source": "raw.events",
                                    "bucket": "1 minute", "dimensions": ["event_type"], "freshness": "1 s",
                                    "measures": [{"name": "events", "agg": "count"}]}))
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)
        serving.drop(config, f"serving.{name}")
        versions.forget(config, name)


def health_run(api: AirflowApi, grace: str) -> tuple[str, str]:
    """Trigger platform_health with the given grace; its final state and its `views` task's log."""
    run_id = api.trigger("platform_health", {"freshness_grace": grace})
    state = api.wait("platform_health", run_id, timeout=300)
    return state, api.task_log("platform_health", run_id, "views")


@pytest.mark.serial  # runs the platform's own jobs on the default topic, and platform_health over every job
def test_the_speed_layer_comes_up_from_the_form_and_back_from_a_users_savepoint(
        config: Config, airflow_page: Page, strict_view: str) -> None:
    """`speed_layer` with its defaults submits the platform's ingest and speed jobs; after a user
    stopped the speed job with a savepoint, `platform_health` fails naming the view that is now
    behind its target, and a second `speed_layer` run resubmits the job from that savepoint, after
    which `platform_health` succeeds again."""
    ingest, speed = config.ingest.job_name, config.speed.job_name
    api = AirflowApi(Airflow(config))
    view, _ = find_view(strict_view)
    try:
        before = datetime.now(timezone.utc)
        dialog = open_form(airflow_page, config, "speed_layer")
        dialog.get_by_role("button", name="Trigger").click()
        run = wait_for_new_run(api, "speed_layer", before)
        assert api.wait("speed_layer", run["dag_run_id"], timeout=600) == "success", run
        assert jobs.every_task_running(config, ingest) and jobs.every_task_running(config, speed)
        assert feeding_job(config, view) is not None  # the platform's speed job feeds the test's view

        savepoint = jobs.stop(config, speed)
        produce(config, EventGenerator(seed=16), config.kafka.events_topic, count=20)
        deadline = time.monotonic() + 60
        while (measure(config, view).freshness_seconds or 0.0) <= 2.0:  # past its 1 s target
            assert time.monotonic() < deadline, measure(config, view)
            time.sleep(0.5)
        state, log = health_run(api, "0 s")
        assert state == "failed", log[-3000:]
        assert re.search(rf"serving\.{strict_view}: freshness \d+ s, target 1 s \(\+0 s grace\); its job {speed}",
                         log), log[-3000:]

        assert api.wait("speed_layer", api.trigger("speed_layer"), timeout=600) == "success"
        assert jobs.every_task_running(config, speed)
        job_id = jobs.live_job_ids(config)[speed]
        checkpoints = httpx.get(f"{Flink(config).rest_url}/jobs/{job_id}/checkpoints", timeout=10).json()
        restored = checkpoints["latest"]["restored"]  # what Flink itself says the job started from
        assert restored and restored["external_path"].removeprefix("file:") == savepoint.removeprefix("file:"), restored
        deadline = time.monotonic() + 120
        while measure(config, view).freshness_seconds != 0.0:  # caught up: every event committed
            assert time.monotonic() < deadline, measure(config, view)
            time.sleep(1)
        state, log = health_run(api, "0 s")
        assert state == "success", log[-3000:]

        # `status --json` says how much of each answer comes from batch: the 20 events above are
        # above any B, in the speed part, so events_per_type does not answer wholly from batch,
        # and the test's own view, never recomputed, answers from speed alone
        ensure_serving(config, layers_from(config, {}))  # as batch_recompute would, if no run did yet
        status = subprocess.run([LAMBDALAKE, "status", "--json"], capture_output=True, text=True, timeout=120)
        shares = {r["view"]: r["batch_share"] for r in json.loads(status.stdout) if r["kind"] == "view"}
        assert shares.keys() == {v.name for v in load_views()}, shares
        assert shares["events_per_type"] is not None and 0.0 <= shares["events_per_type"] < 1.0, shares
        assert shares[strict_view] == 0.0, shares
        # (a view none of the 20 events reaches may answer nothing: no share)
        assert all(share is None or 0.0 <= share <= 1.0 for share in shares.values()), shares
    finally:
        for name in (speed, ingest):
            jobs.cancel(config, name)


def test_a_bad_param_is_refused_with_a_message_naming_it(config: Config, airflow_page: Page) -> None:
    dialog = open_form(airflow_page, config, "kappa_reprocess")
    view = dialog.get_by_role("combobox")
    view.click()
    view.fill("Bad-Name")
    airflow_page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Trigger").click()
    expect(dialog.get_by_text(re.compile(r"Invalid input for param view: 'Bad-Name' does not match"))).to_be_visible()


def test_the_flink_job_page_shows_a_flame_graph(config: Config, browser: Browser, running_job: str) -> None:
    """Flame graphs are on (`rest.flamegraph.enabled`): a running job's operator shows one.

    The job is idle, and the default On-CPU graph of an idle task may stay empty (its threads
    wait), so the test picks Mixed, which samples waiting threads too, as a person would."""
    [job_id] = jobs.live_jobs(config, running_job)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"http://{config.host}:{config.flink.rest_port}/#/job/running/{job_id}/overview")
        page.locator("g.node").first.click()  # the job graph's operator
        page.get_by_role("tab", name="FlameGraph").click()
        expect(page.get_by_text(re.compile("Measurement:"))).to_be_visible(timeout=60_000)
        page.get_by_text("Mixed", exact=True).click()
        # d3-flame-graph hides the label of a frame too narrow to read (display: none), and the
        # first frame in the page's order may be one of those: any readable frame will do
        frames = page.get_by_text(re.compile(r"^(java|org\.apache)\.")).filter(visible=True)
        expect(frames.first).to_be_visible(timeout=60_000)
    finally:
        page.close()


def test_the_dashboard_shows_every_view_behind_airflows_login_and_links_to_the_other_uis(
        config: Config, airflow_page: Page, tmp_path: Path) -> None:
    url = Airflow(config).url
    assert httpx.get(f"{url}/lambdalake/", timeout=60).status_code == 401  # Airflow's login guards it
    # where a user finds it: Airflow's navigation, which shows the page in a frame
    airflow_page.goto(f"{url}/dags")
    airflow_page.get_by_role("button", name="Browse").click()
    airflow_page.get_by_role("menuitem", name="lambdalake views").click()
    frame = airflow_page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="lambdalake: views")).to_be_visible(timeout=60_000)
    for view in load_views():
        expect(frame.get_by_role("link", name=f"serving.{view.name}", exact=True)).to_be_visible()
        expect(frame.get_by_role("heading", name=f"serving.{view.name}", exact=True)).to_be_visible()
    expect(frame.locator("svg")).to_have_count(len(load_views()))
    for name, href in (("batch runs (Airflow)", f"{url}/dags/batch_recompute/runs"),
                       ("Trino", f"http://{config.host}:{config.trino.port}/ui/")):
        expect(frame.get_by_role("link", name=name)).to_have_attribute("href", href)
    airflow_page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
