from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lambdalake.dashboard import Panel, page
from lambdalake.freshness import Freshness

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def freshness(view: str, mode: str, seconds: float | None, boundary: datetime | None,
              batch_share: float | None = None) -> Freshness:
    return Freshness(view, mode, 60.0, None if seconds is None else "lambdalake-speed", seconds,
                     None if seconds is None else 12, boundary, None, None, None, batch_share=batch_share)


def test_the_page_shows_every_view_marks_a_miss_and_escapes_names() -> None:
    panels = [
        Panel(freshness("events_per_type", "lambda", 4.0, NOW - timedelta(minutes=30), 0.93),
              [(NOW - timedelta(minutes=m), float(m), 0.9) for m in (50, 40, 30)],
              [(NOW - timedelta(minutes=90), NOW - timedelta(minutes=95)),
               (NOW - timedelta(minutes=30), NOW - timedelta(minutes=35))],
              "http://127.0.0.1:8081/#/job/running/abc/overview",
              {"visitors": [0.0, 0.004, 0.011, 0.02], "views": [0.0, 0.0]}),
        Panel(freshness("late_<b>", "lambda", 600.0, None), [], [], None),
        Panel(freshness("by_kappa", "kappa", None, None), [], [], None),
    ]
    text = page(panels, 6, NOW, "http://127.0.0.1:8088", "http://127.0.0.1:8080", live=True)
    for name in ("serving.events_per_type", "serving.late_&lt;b&gt;", "serving.by_kappa"):
        assert text.count(name) == 2, name  # its row and its charts
    assert "late_<b>" not in text
    assert text.count("<svg") == 3 and '<tr class="missed">' in text and "MISSED" in text
    assert 'href="http://127.0.0.1:8081/#/job/running/abc/overview"' in text and "<td>93 %</td>" in text
    assert 'href="http://127.0.0.1:8088/dags/batch_recompute/runs"' in text and 'href="http://127.0.0.1:8080/ui/"' in text
    assert 'http-equiv="refresh"' in text
    assert text.count("speed&#x27;s error vs batch") + text.count("speed's error vs batch") == 3
    assert text.count("no bucket recomputed in this window") == 2  # the panels with no accuracy rows
    assert 'http-equiv="refresh"' not in page(panels, 6, NOW, "a", "b", live=False)


def test_the_airflow_plugin_mounts_the_page_behind_airflows_login() -> None:
    import importlib.util

    from fastapi.testclient import TestClient

    from lambdalake.engines.airflow import PLUGINS_FOLDER

    spec = importlib.util.spec_from_file_location("lambdalake_dashboard", PLUGINS_FOLDER / "lambdalake_dashboard.py")
    assert spec is not None and spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    [app] = plugin.LambdalakeDashboard.fastapi_apps
    assert app["url_prefix"] == "/lambdalake"
    [view] = plugin.LambdalakeDashboard.external_views
    assert view["href"] == "lambdalake/" and not view["href"].startswith("/")  # relative: works under a base path
    assert TestClient(app["app"]).get("/").status_code == 401  # no Airflow token, no page
