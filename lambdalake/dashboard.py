"""The views at a glance: one HTML page of each serving view's freshness against its target over
the last hours, the share of its answer from batch, its boundary moves, how far its speed
layer's answers were from the batch layer's, and links to the Airflow runs, the Flink job and Trino's UI.

Served live inside Airflow's api-server (airflow_plugins/lambdalake_dashboard.py: no port of its
own, behind Airflow's login) and written to a file by `lambdalake report`. Everything on it comes
from where the platform keeps it:
- freshness and batch share over time: meta.view_freshness, what `platform_health` measured
  (lambdalake.freshness);
- freshness, lag, B and batch share now: measured when the page is drawn;
- the boundary moves: the serving state store's batch steps (lambdalake.serving);
- the speed layer's error: meta.view_accuracy, recorded at each batch swap (lambdalake.accuracy).

Charts are drawn by matplotlib and inlined as SVG, so the page (and the report) is one file.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from lambdalake import serving
from lambdalake.accuracy import errors_since
from lambdalake.config import Config
from lambdalake.freshness import META_TABLE, Freshness, measure_all

#: how often the live page reloads itself, in seconds
REFRESH_SECONDS = 60


@dataclass(frozen=True)
class Panel:
    """One view's part of the page."""

    now: Freshness
    #: (measured_at, freshness seconds or None while no job fed it, batch share), oldest first
    series: list[tuple[datetime, float | None, float | None]]
    #: (when it went live, B), oldest first
    boundary_moves: list[tuple[datetime, datetime]]
    #: the Flink UI page of the job feeding the view; None when it is not running
    job_url: str | None
    #: measure -> the speed layer's relative errors against batch, recorded in the window
    errors: dict[str, list[float]] = field(default_factory=dict)


def series(config: Config, since: datetime) -> dict[str, list[tuple[datetime, float | None, float | None]]]:
    """meta.view_freshness since `since`, per serving view, oldest first (created, empty, before
    the first `platform_health` run)."""
    from lambdalake.query import run_query
    from lambdalake.tables import ensure_table

    ensure_table(config, META_TABLE)
    _, rows = run_query(config, f"select view, measured_at, freshness_seconds, batch_share from {META_TABLE} "
                                "where measured_at >= ? order by measured_at", [since])
    found: dict[str, list[tuple[datetime, float | None, float | None]]] = {}
    for view, at, seconds, share in rows:
        found.setdefault(view, []).append((at, seconds, share))
    return found


def gather(config: Config, hours: float, now: datetime | None = None) -> list[Panel]:
    from lambdalake.flink_rest import FlinkRest
    from lambdalake.jobs import live_jobs

    now = now or datetime.now(timezone.utc)
    since = now - timedelta(hours=hours)
    history = series(config, since)
    errors = errors_since(config, since)
    panels = []
    for measured in measure_all(config, now, split=True):
        name = f"serving.{measured.view}"
        moves = sorted((s.live_at, s.boundary) for s in serving.batch_steps(config, name)
                       if s.live_at is not None and s.boundary is not None and s.live_at >= since)
        live = live_jobs(config, measured.job) if measured.job else []
        job_url = FlinkRest(config).ui_job_url(live[0]) if live else None
        panels.append(Panel(measured, history.get(name, []), moves, job_url, errors.get(name, {})))
    return panels


def chart(panel: Panel, since: datetime, now: datetime) -> str:
    """Four plots side by side, as inline SVG: freshness against the target, the share of the
    answer from batch, and B, over time; and the distribution of the speed layer's relative error
    against batch, per measure."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    figure, (left, middle, right, error) = plt.subplots(1, 4, figsize=(18, 2.6), layout="constrained")
    points = [(at, seconds) for at, seconds, _ in panel.series if seconds is not None]
    if panel.now.freshness_seconds is not None:
        points.append((now, panel.now.freshness_seconds))
    if points:
        left.plot([at for at, _ in points], [seconds for _, seconds in points], marker=".", label="freshness")
    left.axhline(panel.now.target_seconds, color="tab:red", linestyle="--", label="target")
    left.set(title="freshness (s)", xlim=(since, now), ylim=(0, None))
    left.legend(loc="upper left", fontsize="small")
    shares = [(at, 100 * share) for at, _, share in panel.series if share is not None]
    if panel.now.batch_share is not None:
        shares.append((now, 100 * panel.now.batch_share))
    if shares:
        middle.plot([at for at, _ in shares], [share for _, share in shares], marker=".", color="tab:green")
    middle.set(title="answer from batch (%)", xlim=(since, now), ylim=(0, 100))
    if panel.boundary_moves:
        right.step([at for at, _ in panel.boundary_moves] + [now],
                   [b for _, b in panel.boundary_moves] + [panel.boundary_moves[-1][1]], where="post", marker=".")
        right.yaxis.set_major_formatter(matplotlib.dates.DateFormatter("%H:%M"))
    else:
        right.set_yticks([])
        right.text(0.5, 0.5, "no batch run in this window" if panel.now.mode == "lambda" else "kappa view: no B",
                   ha="center", va="center", transform=right.transAxes)
    right.set(title="B (batch below, speed from)", xlim=(since, now))
    if panel.errors:
        measures = sorted(panel.errors)
        error.boxplot([[100 * e for e in panel.errors[m]] for m in measures], whis=(5, 95), showfliers=True)
        error.set_xticks(range(1, len(measures) + 1), measures)
    else:
        error.set_xticks([])
        error.text(0.5, 0.5, "no bucket recomputed in this window", ha="center", va="center",
                   transform=error.transAxes)
    error.set(title="speed's error vs batch (%, p5-p95)", ylim=(0, None))
    error.tick_params(labelsize="small")
    for axes in (left, middle, right):
        axes.tick_params(labelsize="small")
        axes.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%H:%M"))
    out = io.StringIO()
    figure.savefig(out, format="svg")
    plt.close(figure)
    return out.getvalue().split("<svg", 1)[1].join(("<svg", ""))  # without the XML prologue


def render_html(config: Config, hours: float = 6, now: datetime | None = None, *, live: bool = True) -> str:
    """The whole page, as the platform is now; `live` adds a reload every REFRESH_SECONDS (the
    report has none)."""
    from lambdalake.engines.airflow import Airflow
    from lambdalake.engines.trino import Trino

    now = now or datetime.now(timezone.utc)
    return page(gather(config, hours, now), hours, now, Airflow(config).url, Trino(config).url, live=live)


def page(panels: list[Panel], hours: float, now: datetime, airflow: str, trino: str, *, live: bool) -> str:
    """The page for these panels (every text escaped)."""
    since = now - timedelta(hours=hours)
    e = html.escape
    rows, sections = [], []
    for p in panels:
        m = p.now
        fresh = "not started" if m.freshness_seconds is None else f"{m.freshness_seconds:.0f} s"
        state = {True: "on target", False: "MISSED", None: "not measured"}[m.on_target]
        job = f'<a href="{e(p.job_url)}">{e(m.job or "")}</a>' if p.job_url else e(m.job or "not running")
        rows.append(
            f'<tr class="{"missed" if m.on_target is False else ""}"><td><a href="#{e(m.view)}">serving.{e(m.view)}</a>'
            f"</td><td>{e(m.mode)}</td><td>{m.target_seconds:.0f} s</td><td>{e(fresh)}</td><td>{e(state)}</td>"
            f"<td>{'-' if m.lag_records is None else m.lag_records}</td>"
            f"<td>{'-' if m.boundary is None else f'{m.boundary:%Y-%m-%d %H:%M} UTC'}</td>"
            f"<td>{'-' if p.now.batch_share is None else f'{100 * p.now.batch_share:.0f} %'}</td><td>{job}</td></tr>")
        sections.append(f'<section id="{e(m.view)}"><h2>serving.{e(m.view)}</h2>{chart(p, since, now)}</section>')
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if live else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}<title>lambdalake: views</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: left; }}
tr.missed td {{ color: #b00; font-weight: bold; }} svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>lambdalake: views</h1>
<p>Drawn {now:%Y-%m-%d %H:%M:%S} UTC; the last {hours:g} h. Freshness: from an event reaching Kafka
to it being counted in serving. Links:
<a href="{e(airflow)}/dags/batch_recompute/runs">batch runs (Airflow)</a>,
<a href="{e(airflow)}/dags/platform_health/runs">health checks (Airflow)</a>,
<a href="{e(trino)}/ui/">Trino</a>.</p>
<table><tr><th>view</th><th>mode</th><th>target</th><th>freshness</th><th></th><th>lag (records)</th><th>B</th>
<th>from batch</th><th>Flink job</th></tr>
{"".join(rows)}
</table>
{"".join(sections)}
</body></html>
"""
