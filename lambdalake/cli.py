"""The `lambdalake` command: install, start, stop and use the platform."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from lambdalake.config import Config, load_config
from lambdalake.errors import ConfigError, LambdalakeError, SetupError

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _config() -> Config:
    return load_config()


@app.callback()
def profile(name: Annotated[str | None, typer.Option(
        "--profile", help="cluster: every engine in its cluster shape on this host (lambdalake.cluster.toml); "
                          "the default is lambdalake.toml, or the file in LAMBDALAKE_CONFIG")] = None) -> None:
    """Install, start, stop and use the platform."""
    import os

    from lambdalake.config import CONFIG_ENV, PROFILES, PROJECT_ROOT

    if name is None:
        return
    if name not in PROFILES:
        raise ConfigError(f"--profile {name!r} is not one of {', '.join(PROFILES)}")
    # the environment, so that every process `up` starts (engines, jobs, Airflow tasks) reads the same file
    os.environ[CONFIG_ENV] = str(PROJECT_ROOT / ("lambdalake.toml" if name == "single" else f"lambdalake.{name}.toml"))


def say(message: str) -> None:
    typer.echo(message)


@app.command()
def setup() -> None:
    """Fetch and install every engine at its pinned version (idempotent; fast when done before)."""
    from lambdalake.install import setup as run_setup

    started = time.monotonic()
    run_setup(_config(), say)
    say(f"setup done in {time.monotonic() - started:.0f}s")


@app.command()
def up() -> None:
    """Start every engine under supervisord and wait until each is healthy."""
    from lambdalake.platform import up as start

    started = time.monotonic()
    config = _config()
    start(config, say)
    say(f"all engines healthy in {time.monotonic() - started:.0f}s; logs in {config.logs_dir}")


@app.command()
def down() -> None:
    """Stop every engine and leave no process behind."""
    from lambdalake.platform import down as stop

    stop(_config(), say)
    say("stopped")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Also exit 1 when a view misses its freshness "
                                                         "target.")] = False,
) -> None:
    """Show each engine, its health and its endpoint, each job the platform expects to run, and
    each view's freshness against its target; exit 0 only when all engines are healthy and every
    job runs (and, with --check, every view is on target)."""
    from lambdalake.platform import job_status
    from lambdalake.platform import status as engine_status

    config = _config()
    report = engine_status(config)
    expected_jobs = job_status(config, report)
    views = []
    healthy = {s.name for s in report if s.healthy}
    if {"postgres", "kafka"} <= healthy:
        from lambdalake.freshness import measure_all

        views = measure_all(config, split="trino" in healthy)
    if as_json:
        say(json.dumps([{"kind": "engine", **vars(s)} for s in report]
                       + [{"kind": "job", **vars(j)} for j in expected_jobs]
                       + [{"kind": "view", **v.to_dict()} for v in views], indent=2))
    else:
        width = max(len(s.name) for s in report)
        for s in report:
            say(f"{s.name:<{width}}  {'healthy' if s.healthy else 'DOWN':<7}  {s.endpoint:<34}  {s.detail}")
            if config.clustered:  # every node of the cluster profile, as supervisord sees it
                say(f"{'':<{width}}  nodes: " + ", ".join(f"{name} {state}" for name, state in s.programs.items()))
        for j in expected_jobs:
            say(f"job {j.name}  {'running' if j.healthy else j.state}  {j.detail}")
        _print_freshness(views)
    missed = [v for v in views if v.on_target is False]
    if not all(s.healthy for s in report) or not all(j.healthy for j in expected_jobs) or (check and missed):
        raise typer.Exit(1)


def _print_freshness(views) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    if not views:
        return
    table = Table("view", "target", "freshness", "lag", "B", "B age", "last batch", "from batch", title="views")
    for v in views:
        fresh = "not started" if v.freshness_seconds is None else f"{v.freshness_seconds:.0f} s"
        style = "red" if v.on_target is False else None
        table.add_row(f"serving.{v.view}", f"{v.target_seconds:.0f} s", fresh,
                      "-" if v.lag_records is None else str(v.lag_records),
                      "-" if v.boundary is None else f"{v.boundary:%Y-%m-%d %H:%M}",
                      "-" if v.boundary_age_seconds is None else f"{v.boundary_age_seconds / 60:.0f} min",
                      "-" if v.last_batch_seconds is None else f"{v.last_batch_seconds:.1f} s at {v.last_batch_at:%H:%M}",
                      "-" if v.batch_share is None else f"{100 * v.batch_share:.0f} %",
                      style=style)
    Console(width=160).print(table)


@app.command()
def dashboard() -> None:
    """Print the address of the live dashboard: every view's freshness against its target over the
    last hours, its B moves, and links to Airflow, Flink and Trino. It is a page of Airflow's
    (its port, its login; "lambdalake views" in its navigation), so it opens no port of its own."""
    from lambdalake.engines.airflow import Airflow

    say(f"{Airflow(_config()).url}/lambdalake/  (log in to Airflow first; ?hours=N for another window)")


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("lambdalake-report.html"),
    hours: Annotated[float, typer.Option("--hours", min=0.25, help="How far back the charts reach.")] = 6,
) -> None:
    """Write the dashboard, as it is now, to one self-contained HTML file (charts inlined)."""
    from lambdalake.dashboard import render_html

    out.write_text(render_html(_config(), hours, live=False))
    say(f"wrote {out}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SQL statement, run by Trino in catalog `lake`.")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Answer as serving.* did at this instant (ISO-8601, UTC unless it names a zone), "
                        "within [serving] history_retention.")] = None,
    show_sql: Annotated[bool, typer.Option("--show-sql", help="With --as-of: print the SQL it runs, and stop.")] = False,
) -> None:
    """Run SQL through Trino and print the result as tab-separated rows with a header."""
    from lambdalake.query import run_query

    config = _config()
    if as_of is not None:
        from lambdalake.history import parse_instant, rewrite

        sql = rewrite(config, sql, parse_instant(as_of))
        if show_sql:
            say(sql)
            return
    columns, rows = run_query(config, sql)
    say("\t".join(columns))
    for row in rows:
        say("\t".join("" if v is None else str(v) for v in row))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def trino(context: typer.Context) -> None:
    """Open the Trino CLI on catalog `lake` (extra arguments go to it, e.g. --execute "select 1")."""
    import os

    from lambdalake.engines.trino import Trino

    engine = Trino(_config())
    if not engine.cli_jar.exists():
        raise SetupError(f"the Trino CLI is not at {engine.cli_jar}: run `lambdalake setup`")
    command = engine.cli_command(*context.args)
    os.execv(command[0], command)


@app.command("flink-sql")
def flink_sql(
    statements: Annotated[list[str], typer.Argument(help="Flink SQL statements, run in order in catalog `lake`.")],
) -> None:
    """Run Flink SQL as a PyFlink job on the session cluster; print the last query's rows."""
    from lambdalake.engines.flink import Flink

    columns, rows = Flink(_config()).sql(*statements)
    say("\t".join(columns))
    for row in rows:
        say("\t".join("" if v is None else str(v) for v in row))


@app.command("flink-run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def flink_run(
    ctx: typer.Context,
    job: Annotated[Path, typer.Argument(help="A PyFlink job file, e.g. flink_jobs/lake_sql.py.", exists=True)],
    detached: Annotated[bool, typer.Option(help="Return once the job is submitted.")] = False,
) -> None:
    """Submit a PyFlink job with `flink run -py` (extra arguments go to the job)."""
    from lambdalake.engines.flink import Flink

    proc = Flink(_config()).run_python_job(job.resolve(), *ctx.args, detached=detached)
    say(proc.stdout.rstrip())


@app.command()
def produce(
    count: Annotated[int | None, typer.Option(help="Send this many records, as fast as possible.")] = None,
    rate: Annotated[float | None, typer.Option(help="Records per second (with --duration); bursts of 3x.")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds to send for, with --rate.")] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same sequence of records.")] = 0,
    late_fraction: Annotated[float, typer.Option(help="Share of events with an old event_time.")] = 0.0,
    late_max: Annotated[float, typer.Option(help="Seconds a late event may be behind, at most.")] = 3600.0,
    duplicate_fraction: Annotated[float, typer.Option(help="Share of records sent again (same event_id).")] = 0.0,
    malformed_fraction: Annotated[float, typer.Option(help="Share of bad records, of every kind.")] = 0.0,
    topic: Annotated[str | None, typer.Option(help="Kafka topic (default: the config's events topic).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Send clickstream events to Kafka, with faults on request; print exactly what was sent."""
    from datetime import timedelta

    from rich.progress import Progress

    from lambdalake.generator import EventGenerator, Faults
    from lambdalake.producer import produce as send

    config = _config()
    try:
        faults = Faults(late_fraction, timedelta(seconds=late_max), duplicate_fraction, malformed_fraction)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    total = count if count is not None else int((rate or 0) * (duration or 0)) or None
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("producing", total=total)
        summary = send(config, EventGenerator(seed, faults), topic or config.kafka.events_topic, count=count,
                       rate=rate, duration=duration, progress=lambda sent: bar.update(task, completed=sent))
    if as_json:
        say(json.dumps(summary.to_dict(), indent=2))
        return
    data = summary.to_dict()
    say(f"sent {data['sent']} records to {data['topic']} in {data['seconds']}s ({data['events_per_second']}/s)")
    for kind, n in data["by_kind"].items():  # type: ignore[union-attr]
        say(f"  {kind:<24} {n}")
    say(f"expected: {data['expected_accepted']} accepted, rejected {data['expected_rejected']}")


@app.command("import")
def import_history(
    paths: Annotated[list[str], typer.Argument(help="History files or globs (JSON lines or Parquet) under the "
                                                     "import root (config paths.import_root).", show_default=False)],
    start: Annotated[str | None, typer.Option("--from", help="Only events at or after this event time "
                                                             "(ISO-8601 with a zone); the others are skipped.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Only events before this event time.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and count; send nothing.")] = False,
    topic: Annotated[str | None, typer.Option(help="Kafka topic (default: the config's events topic).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each file's counts as JSON.")] = False,
) -> None:
    """Load history files into the log, through the platform's rules and its one dedup rule; a file
    imported before (same content, any path) sends nothing. The `backfill` DAG runs the same code."""
    from lambdalake import names
    from lambdalake.imports import import_files, moment

    config = _config()
    results = import_files(config, paths, topic=names.topic_name(topic) if topic else None,
                           start=moment(start, "--from"), end=moment(end, "--to"), dry_run=dry_run,
                           say=(lambda line: None) if as_json else say)
    if as_json:
        say(json.dumps([r.as_dict() for r in results], indent=2))


def _job_commands(kind: str, help_text: str) -> typer.Typer:
    """start / stop / status for one long-running Flink job kind ("ingest" or "speed")."""
    commands = typer.Typer(help=help_text, no_args_is_help=True)

    def job_name(config: Config) -> str:
        return getattr(config, kind).job_name

    @commands.command("start")
    def start(
        parallelism: Annotated[int | None, typer.Option(help="Job parallelism (default: the config's).")] = None,
        savepoint: Annotated[str | None, typer.Option(help="Resume from this savepoint (printed by `stop`).")] = None,
    ) -> None:
        """Create the job's tables if needed and submit it (a no-op when it runs already)."""
        config = _config()
        if kind == "ingest":
            from lambdalake.ingest import IngestTarget, start as submit

            job_id = submit(config, IngestTarget.default(config), parallelism=parallelism, savepoint=savepoint)
        else:
            from lambdalake.speed import SpeedTarget, start as submit_speed

            job_id = submit_speed(config, SpeedTarget.default(config), parallelism=parallelism, savepoint=savepoint)
            if job_id is None:
                say("no lambda view is left for the speed job: each runs in a reprocessed version's job")
                return
        say(f"{kind} job {job_id} running; Flink UI: http://{config.host}:{config.flink.rest_port}/#/job/running")

    @commands.command("stop")
    def stop() -> None:
        """Stop the job with a savepoint and print the savepoint's path."""
        from lambdalake.jobs import stop as stop_with_savepoint

        config = _config()
        say(stop_with_savepoint(config, job_name(config)))

    @commands.command("status")
    def status() -> None:
        """Print the job id and exit 0 when the job is live, else exit 1."""
        from lambdalake.jobs import live_jobs

        config = _config()
        live = live_jobs(config, job_name(config))
        if not live:
            say(f"{kind} job not running")
            raise typer.Exit(1)
        say(f"{kind} job {live[0]} running")

    return commands


app.add_typer(_job_commands("ingest", "The ingest job: Kafka `events` -> raw.events (+ raw.events_rejected)."),
              name="ingest")
speed_commands = _job_commands("speed", "The speed job: every lambda view's real-time part -> speed.<view>.")
app.add_typer(speed_commands, name="speed")


@speed_commands.command("restart")
def speed_restart() -> None:
    """Restart the running speed job for the lambda views in views/ now, losing and doubling nothing.

    For a view added to views/ (it counts from the restart on until the next batch run) or one
    removed. It re-reads the log from one `[dedup] horizon` before the restart; see the README.
    """
    from lambdalake.speed import SpeedTarget, restart

    config = _config()
    job_id = restart(config, SpeedTarget.default(config))
    say("speed job stopped: no lambda view is left for it" if job_id is None else f"speed job {job_id} running")


@app.command("serving-refresh")
def serving_refresh() -> None:
    """Create serving.<view> (speed layer only until a batch run) for every view that has none."""
    from lambdalake.batch import Layers, ensure_serving

    config = _config()
    ensure_serving(config, Layers(topic=config.kafka.events_topic))
    say("serving views in place")


@app.command("batch-run")
def batch_run(
    view: Annotated[list[str] | None, typer.Option(help="Only this view (repeatable); default: all.")] = None,
    full: Annotated[bool, typer.Option(help="Recompute from the whole master dataset, not only what arrived "
                                            "since the last run (after fixing data or logic).")] = False,
) -> None:
    """One batch recompute now, without Airflow (the `batch_recompute` DAG runs the same code)."""
    from lambdalake.batch import Layers, ensure_serving, run_once

    config = _config()
    layers = Layers(topic=config.kafka.events_topic)
    ensure_serving(config, layers)
    written = run_once(config, layers, view, full=full)
    if not written:
        say("nothing complete in the master dataset yet: serving is the speed layer alone")
    for name, table in written.items():
        say(f"serving.{name} <- {table} + speed rows from its boundary on")


kappa = typer.Typer(help="Reprocess a view (kappa or lambda): replay the log into a new version, switch serving, "
                         "retire the old one.",
                    no_args_is_help=True)
app.add_typer(kappa, name="kappa")


@kappa.command("reprocess")
def kappa_reprocess(
    view: Annotated[str, typer.Argument(help="A view in views/ (kappa or lambda).")],
    version: Annotated[int, typer.Option(help="The version views/<view>.yaml now states.")],
    lag_threshold: Annotated[int | None, typer.Option(help="Caught up at this lag (records); "
                                                           "default: the config's kappa.lag_threshold.")] = None,
    grace_seconds: Annotated[int | None, typer.Option(help="Keep the old table this long after the switch; "
                                                           "default: the config's kappa.grace_period.")] = None,
) -> None:
    """Replay the log into the view's new version, switch serving.<view> to it, retire the old one.

    The same steps as the `kappa_reprocess` DAG, run here; safe to run again if interrupted.
    """
    from lambdalake.kappa import reprocess

    reprocess(_config(), view, version, say, lag_threshold=lag_threshold, grace_seconds=grace_seconds)


@kappa.command("versions")
def kappa_versions(
    view: Annotated[list[str] | None, typer.Argument(help="Views to list; default: every view.")] = None,
) -> None:
    """List each view's versions: its table, which one serving reads, its job, its consumer lag."""
    from lambdalake.kappa import describe
    from lambdalake.views import load_views

    names = view or [v.name for v in load_views()]
    statuses = describe(_config(), names)
    if not statuses:
        say("no view has a version yet: start the speed job, or `lambdalake kappa reprocess VIEW --version N`")
    for s in statuses:
        lag = "-" if s.lag is None else f"{s.lag} records"
        retired = f", retired {s.retired_at}" if s.retired_at else ""
        say(f"{s.view} v{s.version} ({s.table}): {'LIVE' if s.live else 'not live'}, job {s.job} {s.job_state}, "
            f"lag {lag}{retired}")


serving_commands = typer.Typer(help="The serving layer's state: what each serving view answers from, and its history.")
app.add_typer(serving_commands, name="serving")


def _step_line(step) -> str:  # type: ignore[no-untyped-def]
    version = "base" if step.version is None else f"v{step.version}"
    parts = [f"step {step.id} {step.kind} {step.status}", f"{version} {step.speed_table}"]
    if step.batch_table:
        parts.append(f"{step.batch_table} below B={step.boundary:%Y-%m-%d %H:%M} UTC (was "
                     f"{'-' if step.boundary_before is None else format(step.boundary_before, '%Y-%m-%d %H:%M')})")
    if step.rows_written is not None:
        parts.append(f"{step.rows_written} rows")
    if step.run_reason:
        touched = ("" if step.buckets_recomputed is None else
                   f" ({step.buckets_recomputed} event-time buckets recomputed"
                   + ("" if step.buckets_first is None else
                      f", {step.buckets_first:%Y-%m-%d %H:%M} to {step.buckets_last:%Y-%m-%d %H:%M}") + ")")
        parts.append(f"{step.run_reason}{touched}")
    if step.live_at is not None:
        parts.append(f"live {step.live_at:%Y-%m-%d %H:%M:%S} after {step.seconds:.1f}s")
    if step.airflow_run_id:
        parts.append(f"run {step.airflow_run_id}")
    return ", ".join(parts)


def _step_json(step) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(step).items() if k != "sql"}


@serving_commands.callback(invoke_without_command=True)
def serving_state(context: typer.Context,
                  as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False) -> None:
    """What each serving view answers from now (from the state store)."""
    if context.invoked_subcommand is not None:
        return
    from lambdalake.state import live_steps

    found = live_steps(_config())
    if as_json:
        say(json.dumps([_step_json(step) for step in found], indent=2))
        return
    if not found:
        say("no serving view yet: `lambdalake speed start`, or a batch run, creates them")
    for step in found:
        say(f"{step.serving_view}: {_step_line(step)}")


@serving_commands.command("history")
def serving_history(
        view: Annotated[str, typer.Argument(help="A view, e.g. events_per_type (its serving.<view>).")],
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """Every step that replaced serving.<view>, newest first: batch swaps, switches, B before and after."""
    from lambdalake.names import view_name
    from lambdalake.state import steps

    found = steps(_config(), f"serving.{view_name(view)}")
    if as_json:
        say(json.dumps([_step_json(step) for step in found], indent=2))
        return
    for step in found:
        say(_step_line(step))


@serving_commands.command("janitor")
def serving_janitor() -> None:
    """Drop the batch tables and retired versions no answer within [serving] history_retention needs."""
    from lambdalake.janitor import sweep

    dropped = sweep(_config())
    say("\n".join(dropped) if dropped else "nothing to drop")


@app.command("accuracy")
def accuracy_report(
        view: Annotated[str, typer.Argument(help="A view, e.g. visitors_per_page (its serving.<view>).")],
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """How far the speed layer's answers were from the batch layer's, per measure: the relative
    error's p50, p95 and max over every bucket a batch run recomputed (meta.view_accuracy)."""
    from dataclasses import asdict

    from lambdalake.accuracy import report
    from lambdalake.names import view_name

    serving_view = f"serving.{view_name(view)}"
    spreads = report(_config(), serving_view)
    if as_json:
        say(json.dumps([asdict(s) for s in spreads], indent=2))
        return
    if not spreads:
        say(f"{serving_view}: nothing recorded yet (a batch run records it at each swap)")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2%}"

    for s in spreads:
        say(f"{serving_view} {s.measure}: {s.buckets} buckets, {s.differing} differed; relative error p50 "
            f"{pct(s.p50)}, p95 {pct(s.p95)}, max {pct(s.max)}; largest absolute error {s.max_abs or 0:g}")


views = typer.Typer(help="The view definitions in views/ and their SQL.")
app.add_typer(views, name="views")


@views.callback(invoke_without_command=True)
def list_views(context: typer.Context) -> None:
    """List the view definitions in views/ (validating each), their speed tables, and whether their
    measures need Lambda (more accurate in batch) or Kappa would do (identical in both layers)."""
    if context.invoked_subcommand is not None:
        return
    from lambdalake.views import load_views

    default = _config().serving.freshness_target
    for view in load_views():
        dims = ", ".join(view.dimensions) or "-"
        measures = ", ".join(f"{m.name}={m.agg}({m.column or '*'})" for m in view.measures)
        target = f"{view.freshness_seconds:g} s" if view.freshness_seconds else f"{default} (default)"
        say(f"{view.name} v{view.version} ({view.mode}): every {view.bucket_minutes} min by {dims}: {measures}"
            f" -> {view.speed_table}; freshness target {target}")
        say(f"  measures: {view.architecture}")


@views.command("render")
def render_view(
        view: Annotated[str | None, typer.Argument(help="A view in views/; all of them when omitted.")] = None,
        layer: Annotated[str | None, typer.Option(help="speed, batch or serving; all three when omitted.")] = None,
        write: Annotated[bool, typer.Option(help="Write sql/<layer>/<view>.sql instead of printing.")] = False,
) -> None:
    """Print a view's SQL in each layer, as the jobs and DAGs run it (or write the files in sql/)."""
    from lambdalake.errors import ConfigError
    from lambdalake.render import COUNTED_FILE, LAYERS, render, render_counted_copies, sql_file
    from lambdalake.views import find_view, load_views

    layers = LAYERS if layer is None else (layer,)
    if layer is not None and layer not in LAYERS:
        raise ConfigError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    config = _config()
    for definition in ([find_view(view)[0]] if view else load_views()):
        for name in layers:
            text = render(config, definition, name)
            if write:
                sql_file(definition, name).parent.mkdir(parents=True, exist_ok=True)
                sql_file(definition, name).write_text(text)
                say(f"wrote {sql_file(definition, name)}")
            else:
                say(text.rstrip("\n"))
    if view is None and "batch" in layers:  # the statement every batch run starts with, shared by the views
        if write:
            COUNTED_FILE.write_text(render_counted_copies(config))
            say(f"wrote {COUNTED_FILE}")
        else:
            say(render_counted_copies(config).rstrip("\n"))


@app.command()
def demo() -> None:
    """Start the platform if needed, then run the end-to-end demo."""
    from lambdalake.demo import run_demo
    from lambdalake.platform import up as start

    config = _config()
    start(config, say)
    run_demo(config, say)


@app.command()
def compose(check: bool = typer.Option(False, "--check", help="only say which files are stale; exit 1 if any")) -> None:
    """Write docker/'s compose files (one per layer) from docker/cluster.toml, with the settings `up` uses."""
    from lambdalake import compose as deployment

    files = deployment.render(deployment.cluster_config())
    if check:
        stale = deployment.stale(files)
        for path in stale:
            say(f"stale: docker/{path}")
        if stale:
            raise ConfigError(f"{len(stale)} of docker/'s files differ from docker/cluster.toml: run `make compose`")
        say(f"docker/: {len(files)} files current")
        return
    changed = deployment.write(files)
    say(f"docker/: {len(changed)} of {len(files)} files written" + (f" ({', '.join(changed)})" if changed else ""))


@app.command("config")
def show_config() -> None:
    """Print the effective configuration (file, then environment overrides) as JSON."""
    say(json.dumps(_config().to_dict(), indent=2))


def main() -> None:
    """Entry point: project errors become one plain message and exit code 1, no traceback."""
    try:
        app(standalone_mode=True)
    except LambdalakeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if not _unreachable_engine(exc):
            raise
        typer.echo(f"error: an engine did not answer ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                   "is the platform up? See `lambdalake status`, or start it with `lambdalake up`", err=True)
        sys.exit(1)


def _unreachable_engine(exc: BaseException) -> bool:
    """Whether exc is a client failing to reach an engine (not a bug to show a traceback for)."""
    import httpx
    import requests
    from sqlalchemy.exc import OperationalError
    from trino.exceptions import TrinoConnectionError

    return isinstance(exc, (httpx.TransportError, requests.ConnectionError, OperationalError, ConnectionError,
                            TrinoConnectionError))
