"""Screenshots of the platform's UIs for the README, with the UI tests' browser (tests/browser.py).

    make screenshots        # python -m docs.screenshots; the platform must be up, best after `make demo`

Writes docs/*.png: Airflow's DAG list, `batch_recompute` with its runs and tasks named by view,
its trigger form, `kappa_reprocess`'s form refusing a bad view name, and Trino's UI listing the
batch layer's queries by their source, and lambdalake's dashboard inside Airflow.
"""

from __future__ import annotations

import re
from pathlib import Path

from lambdalake.config import load_config
from lambdalake.engines.airflow import Airflow
from tests.browser import airflow_login, chromium, trino_login

DOCS = Path(__file__).parent


def main() -> None:
    config = load_config()
    url = Airflow(config).url
    with chromium() as browser:
        page = airflow_login(config, browser)
        page.goto(f"{url}/dags")
        page.wait_for_timeout(2000)
        page.screenshot(path=DOCS / "airflow-dags.png")
        page.goto(f"{url}/dags/batch_recompute")
        page.wait_for_timeout(2000)
        page.screenshot(path=DOCS / "airflow-batch-recompute.png")
        page.get_by_role("button", name="Trigger Dag").click()
        page.get_by_role("dialog").screenshot(path=DOCS / "airflow-batch-recompute-form.png")
        page.keyboard.press("Escape")
        page.goto(f"{url}/dags/kappa_reprocess")
        page.get_by_role("button", name="Trigger Dag").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("combobox").fill("Bad-Name")
        dialog.get_by_role("button", name="Trigger").click()
        dialog.get_by_text(re.compile("Invalid input for param view")).wait_for()
        dialog.screenshot(path=DOCS / "airflow-bad-param.png")
        page.goto(f"{url}/dags")
        page.get_by_role("button", name="Browse").click()
        page.get_by_role("menuitem", name="lambdalake views").click()
        page.frame_locator("iframe").get_by_role("heading", name="lambdalake: views").wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=DOCS / "dashboard.png")
        trino = trino_login(config, browser)
        trino.get_by_role("button", name="Finished").click()
        trino.get_by_placeholder(re.compile("User, source, query ID")).fill("lambdalake-airflow batch_recompute")
        trino.wait_for_timeout(3000)
        trino.screenshot(path=DOCS / "trino-queries-by-source.png")
    for path in sorted(DOCS.glob("*.png")):
        print(path)


if __name__ == "__main__":
    main()
