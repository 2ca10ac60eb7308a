"""The browser the UI tests and `make screenshots` drive: Debian's chromium-headless-shell through
Playwright (`.ci/run` installs it; Playwright's own browser download does not work here)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from playwright.sync_api import Browser, Page, expect, sync_playwright

from lambdalake.config import Config
from lambdalake.engines.airflow import Airflow, AirflowApi

BROWSER = "chromium-headless-shell"
#: without these, Chromium keeps calling Google's hosts, which this machine refuses
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which(BROWSER)
    if executable is None:
        raise RuntimeError(f"{BROWSER} is not installed: `apt-get install {BROWSER}` (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def airflow_login(config: Config, browser: Browser) -> Page:
    """A new page logged in to Airflow as the admin, through the login form."""
    airflow = Airflow(config)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(airflow.url)
    page.get_by_label("Username").fill(config.airflow.admin_user)
    page.get_by_label("Password").fill(airflow.admin_password())
    page.get_by_role("button", name="Sign in").click()
    # exact: the home page also links "Failed Dags", "Running Dags" and "Active Dags". 30 s, not
    # Playwright's 5 s default: once, under the lanes' load, the page after signing in took longer
    expect(page.get_by_role("link", name="Dags", exact=True)).to_be_visible(timeout=30_000)
    return page


def trino_login(config: Config, browser: Browser) -> Page:
    """A new page on Trino's UI, past its login form (any user name, no password on http)."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"http://{config.host}:{config.trino.port}/ui/")
    page.get_by_placeholder("Username").fill("lambdalake")
    page.get_by_role("button", name="Log In").click()
    expect(page.get_by_text("Query Details")).to_be_visible()
    return page


def open_form(page: Page, config: Config, dag_id: str):  # type: ignore[no-untyped-def]
    """The DAG's trigger form, opened from its page as a person does."""
    page.goto(f"{Airflow(config).url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible()
    return dialog


def wait_for_new_run(api: AirflowApi, dag_id: str, since: datetime, timeout: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.client.get(f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 5})
        response.raise_for_status()
        for run in response.json()["dag_runs"]:
            if run["run_type"] == "manual" and datetime.fromisoformat(run["run_after"]) >= since:
                return run
        time.sleep(1)
    raise AssertionError(f"no run of {dag_id} since {since} appeared after clicking Trigger")
