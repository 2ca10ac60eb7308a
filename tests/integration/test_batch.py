"""The merge invariant on the real engines: serving = batch below B + speed from B, exactly.

Events stream (with late, duplicate and malformed records) while `batch_recompute` runs twice,
triggered through Airflow's REST API, with `iceberg_maintenance` between the two runs. At many
instants, each serving.<view> bucket must not exceed the truth (nothing counted twice); once the
stream stops and the speed layer has caught up, serving must equal the truth exactly. The truth is
computed in the test, in plain Python, from the records sent (the first copy of each good event).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import islice

import psutil
import pytest

from lambdalake import history, serving, state
from lambdalake.batch import Layers, counted_table, current_boundary
from lambdalake.config import Config
from lambdalake.derive import serving_view_sql
from lambdalake.engines.airflow import Airflow, AirflowApi
from lambdalake.generator import EventGenerator, Faults, Record
from lambdalake.query import run_query
from lambdalake.views import DISTINCT_ERROR, View, lambda_views
from tests.integration.conftest import deployed_layers, wait_for_boundary
from tests.integration.test_speed import SPEED_TOTALS, send, truth

FAULTS = Faults(late_fraction=0.15, late_max=timedelta(hours=2), duplicate_fraction=0.1, malformed_fraction=0.05)
DAG_ID = "batch_recompute"
MAINTENANCE_DAG_ID = "iceberg_maintenance"
#: topic -> every record a test of this module sent to it, for the next test's truth
SENT_BY_TEST: dict[str, list[Record]] = {}


@pytest.fixture(scope="module")
def layers(config: Config) -> Iterator[Layers]:
    with deployed_layers(config, "batch") as layers:
        yield layers


#: (view, instant before the query, instant after it, its answer)
Answer = tuple[str, datetime, datetime, dict[tuple, tuple]]  # type: ignore[type-arg]


class Approx:
    """A distinct count serving flags approximate: it equals any count within 3 standard errors
    (the issue's bound; below about 20 that is exact), and exceeds only counts further below it."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        truth = other.value if isinstance(other, Approx) else other
        return isinstance(truth, int) and abs(self.value - truth) <= 3 * DISTINCT_ERROR * max(truth, self.value)

    def __gt__(self, other: int) -> bool:
        return self.value > other and not self == other

    def __repr__(self) -> str:
        return f"~{self.value}"


#: serving's totals, where they differ from the speed table's: the distinct count and whether it is exact
SERVING_TOTALS = {**SPEED_TOTALS,
                  "visitors_per_page": "select event_time_bucket, page, visitors, visitors_is_exact from {t}"}


def totals_of(rows: list[list], flagged: bool = False) -> dict[tuple, tuple]:  # type: ignore[type-arg]
    """(bucket, dimension) -> measures; `flagged`: each row ends with whether its last measure (a
    distinct count) is exact, and an approximate one becomes an Approx."""
    if flagged:
        rows = [[*row[:-2], row[-2] if row[-1] else Approx(row[-2])] for row in rows]
    return {(row[0].astimezone(timezone.utc), row[1]): tuple(row[2:]) for row in rows}


def serving_totals(config: Config, layers: Layers, answers: list[Answer] | None = None) -> dict[str, dict[tuple, tuple]]:
    """Each serving view's totals per bucket now. With `answers`, each view is asked twice in a row
    and both answers are appended: back to back, they are often equal (see
    assert_answers_reproduced_as_of); the second is returned."""
    totals = {}
    for view in lambda_views():
        for _ in range(1 if answers is None else 2):
            before = datetime.now(timezone.utc)
            _, rows = run_query(config, SERVING_TOTALS[view.name].format(t=layers.serving(view)))
            totals[view.name] = totals_of(rows, view.needs_lambda)
            if answers is not None:
                answers.append((view.name, before, datetime.now(timezone.utc), totals[view.name]))
    return totals


def never_above(serving: dict[str, dict[tuple, tuple]], expected: dict[str, dict[tuple, tuple]]) -> list[str]:
    """Buckets where serving exceeds the truth: counted twice (or counted and never sent)."""
    wrong = []
    for name, buckets in serving.items():
        for key, values in buckets.items():
            bound = expected[name].get(key)
            if bound is None or any(v is not None and b is not None and v > b for v, b in zip(values, bound)):
                wrong.append(f"{name} {key}: serving {values} > truth {bound}")
    return wrong


class Stream(threading.Thread):
    """Sends records at about `rate` per second until stopped; `sent` grows as Kafka acknowledges."""

    def __init__(self, config: Config, topic: str, records: Iterator[Record], rate: int) -> None:
        super().__init__(daemon=True)
        self.config, self.topic, self.records, self.rate = config, topic, records, rate
        self.sent: list[Record] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            chunk = list(islice(self.records, self.rate // 4))
            send(self.config, self.topic, chunk)
            self.sent.extend(chunk)
            time.sleep(0.25)


def maintained_tables(layers: Layers) -> list[str]:
    return [layers.events_table, layers.rejected_table, *(layers.speed(view) for view in lambda_views())]


def conf(layers: Layers) -> dict[str, object]:
    return {"topic": layers.topic, "events_table": layers.events_table, "rejected_table": layers.rejected_table,
            "suffix": layers.suffix, "views": []}


def test_serving_is_exact_while_batch_runs_swap_in(config: Config, layers: Layers) -> None:
    api = AirflowApi(Airflow(config))
    api.prepare_dag(DAG_ID)
    api.prepare_dag(MAINTENANCE_DAG_ID)

    stream = Stream(config, layers.topic, EventGenerator(seed=33, faults=FAULTS).records(), rate=120)
    stream.start()
    checks, boundaries, run_ids = 0, [], []
    answers: list[Answer] = []
    try:
        wait_for_boundary(config, layers, timeout=120)
        triggered = time.monotonic() - 61
        for _ in range(2):
            # a minute between runs: the master dataset moves past a new minute, and B with it
            time.sleep(max(0.0, triggered + 61 - time.monotonic()))
            triggered = time.monotonic()
            run_id = api.trigger(DAG_ID, conf(layers))
            run_ids.append(run_id)

            def check() -> None:  # around the swap, as often as the query allows
                nonlocal checks
                wrong = never_above(serving_totals(config, layers, answers), truth(list(stream.sent)))
                assert not wrong, wrong[:5]
                checks += 1

            assert api.wait(DAG_ID, run_id, while_waiting=check) == "success", f"batch run {run_id} failed"
            boundaries.append(current_boundary(config, layers, lambda_views()[0]))
            if len(boundaries) == 1:  # compaction, snapshot expiry and orphan removal, while streaming, before a run
                maintained = api.trigger(MAINTENANCE_DAG_ID, {"tables": maintained_tables(layers)})
                assert api.wait(MAINTENANCE_DAG_ID, maintained, while_waiting=check) == "success"
    finally:
        stream.stopping.set()
        stream.join()

    assert checks >= 3
    assert boundaries[0] is not None and boundaries == sorted(boundaries), boundaries

    SENT_BY_TEST[layers.topic] = list(stream.sent)
    wait_for_serving(config, layers, truth(stream.sent))
    assert_speed_rows_expired(config, layers)
    # before assert_history_recorded, which drops the old batch tables the older answers read
    assert_answers_reproduced_as_of(config, layers, answers)
    assert_history_recorded(config, layers, run_ids, boundaries)
    assert_airflow_shows_what_each_task_did(config, api, layers, run_ids[-1])


def assert_airflow_shows_what_each_task_did(config: Config, api: AirflowApi, layers: Layers, run_id: str) -> None:
    """In the UI: mapped tasks named by their view, one asset event per view written, and task
    logs that say what was done (view, B, rows, seconds)."""
    views = {view.name for view in lambda_views()}
    recomputes = [ti for ti in api.task_instances(DAG_ID, run_id) if ti["task_id"] == "recompute"]
    assert {ti["rendered_map_index"] for ti in recomputes} == views, recomputes
    events = api.asset_events(DAG_ID, run_id)
    assert sorted(e["uri"] for e in events) == sorted(f"lake://batch/{view}{layers.suffix}" for view in views), events
    for ti in recomputes:
        log = api.task_log(DAG_ID, run_id, "recompute", ti["map_index"], ti["try_number"])
        view = ti["rendered_map_index"]
        assert f"{view}: serving.{view}{layers.suffix} now reads batch.{view}{layers.suffix}__b" in log, log[-2000:]
        assert "rows written in" in log and "below B=" in log, log[-2000:]
    # the copies were judged once, before the views, and dropped after them
    counted = counted_table(layers)
    log = api.task_log(DAG_ID, run_id, "count_copies")
    assert "copies count below B=" in log and counted in log, log[-2000:]
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG_ID, run_id)}
    assert states["count_copies"] == states["drop_counted"] == "success", states
    assert state.counted_copies(config, counted) is None


def assert_answers_reproduced_as_of(config: Config, layers: Layers, answers: list[Answer], per_view: int = 6) -> None:
    """`query --as-of` gives back what serving answered, at instants spread over the batch runs.

    Serving's totals only grow (speed rows are appended; a swap replaces speed rows below the new B
    by the truth), so when two successive answers of a view are equal, the view answered exactly
    that at every instant between the two queries: the end of the first is such an instant.
    """
    for view in lambda_views():
        seen = [a for a in answers if a[0] == view.name]
        stable = [(first[2], first[3]) for first, second in zip(seen, seen[1:]) if first[3] == second[3]]
        assert len(stable) >= per_view, f"{view.name}: only {len(stable)} stable answers among {len(seen)}"
        chosen = [stable[round(i * (len(stable) - 1) / (per_view - 1))] for i in range(per_view)]
        steps = set()
        for instant, answer in chosen:
            sql = history.rewrite(config, SERVING_TOTALS[view.name].format(t=layers.serving(view)), instant)
            assert totals_of(run_query(config, sql)[1], view.needs_lambda) == answer, f"{view.name} as of {instant}"
            steps.add(state.step_live_at(config, layers.serving(view), instant).id)  # type: ignore[union-attr]
        assert len(steps) >= 2, f"{view.name}: every chosen instant fell in one step"


def assert_history_recorded(config: Config, layers: Layers, run_ids: list[str], boundaries: list) -> None:  # type: ignore[type-arg]
    """The state store holds every swap: one live step per run and view, with its Airflow run, B
    before and after, the rows written and the seconds it took; what it says is live is the table
    Trino finds in the view. No batch table serving read within the history retention is dropped;
    every batch table the store says was dropped is gone."""
    for view in lambda_views():
        steps = serving.batch_steps(config, layers.serving(view))
        assert [s.airflow_run_id for s in reversed(steps)] == run_ids, steps
        assert all(s.status == "live" and s.rows_written is not None and s.seconds is not None for s in steps), steps
        assert steps[0].rows_written > 0, steps[0]  # type: ignore[operator]  # the first B may precede every event
        assert [s.boundary for s in reversed(steps)] == sorted(s.boundary for s in steps)
        assert all(newer.boundary_before == older.boundary for newer, older in zip(steps, steps[1:])), steps
        live = serving.live(config, layers.serving(view))
        assert live is not None and live.step_id == steps[0].id and live.boundary == boundaries[-1]
        _, [[definition]] = run_query(config, "select view_definition from information_schema.views where "
                                              "table_schema = 'serving' and table_name = ?",
                                      [layers.serving(view).split(".")[1]])
        assert live.batch_table.split(".")[1] in definition  # type: ignore[union-attr]
        # every table serving read within [serving] history_retention is kept, for time travel
        tables = list(dict.fromkeys(s.batch_table for s in steps))  # newest first
        assert serving.drop_batch_tables(config, layers.serving(view), keep=2) == []
        # without a retention, the live table and the one before it are kept (a run with an
        # unchanged B replaces its table)
        no_history = dataclasses.replace(config, serving=dataclasses.replace(config.serving, history_retention="0s"))
        serving.drop_batch_tables(no_history, layers.serving(view), keep=2)
        steps = serving.batch_steps(config, layers.serving(view))
        for table in tables:
            _, found = run_query(config, "select 1 from information_schema.tables where table_schema = 'batch' "
                                         "and table_name = ?", [table.split(".")[1]])  # type: ignore[union-attr]
            recorded = any(s.dropped_at is not None for s in steps if s.batch_table == table)
            assert (bool(found), recorded) == ((True, False) if table in tables[:2] else (False, True)), table


def assert_speed_rows_expired(config: Config, layers: Layers) -> None:
    """After a run, speed rows below the previous run's B are gone; those at or after it stay."""
    for view in lambda_views():
        previous = sorted(batch_tables(config, layers, view))[-2].rsplit("__b", 1)[1]
        limit = f"timestamp '{previous[:4]}-{previous[4:6]}-{previous[6:8]} {previous[8:10]}:{previous[10:]}:00 UTC'"
        _, [[below, total]] = run_query(config, f"select count_if(ingest_bucket < {limit}), count(*) "
                                                f"from {layers.speed(view)}")
        assert below == 0, f"{view.name}: {below} speed rows below {previous} were not expired"
        assert total > 0


def batch_tables(config: Config, layers: Layers, view: View | None = None) -> set[str]:
    _, rows = run_query(config, "show tables from batch")
    prefix = "" if view is None else f"{view.name}{layers.suffix}__b"
    return {name for (name,) in rows if layers.suffix in name and name.startswith(prefix)}


def wait_for_serving(config: Config, layers: Layers, expected: dict, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while (serving := serving_totals(config, layers)) != expected:
        assert not never_above(serving, expected), never_above(serving, expected)[:5]
        assert time.monotonic() < deadline, "serving never caught up with the truth"
        time.sleep(3)


def airflow_task_processes(task_instance_ids: set[str]) -> list[psutil.Process]:
    """The processes running these task instances' code: Airflow titles each `airflow worker -- <ti id>`
    (its parent, the executor's worker that supervises it, is `airflow worker -- LocalExecutor: ...`)."""
    titles = {f"airflow worker -- {ti_id}" for ti_id in task_instance_ids}
    # a retitled process's cmdline ends in empty strings (the rest of its old argv area)
    return [proc for proc in psutil.process_iter(["cmdline"])
            if " ".join(part for part in proc.info["cmdline"] or [] if part) in titles]


def test_a_batch_task_killed_midway_leaves_serving_exact_and_the_run_completes(
        config: Config, layers: Layers) -> None:
    records = list(islice(EventGenerator(seed=34, faults=FAULTS).records(), 1500))
    send(config, layers.topic, records)
    time.sleep(65 - time.time() % 60)  # past the next ingest minute, so the run has a new boundary and real work
    expected = truth(SENT_BY_TEST[layers.topic] + records)

    api = AirflowApi(Airflow(config))
    before = batch_tables(config, layers)
    run_id = api.trigger(DAG_ID, conf(layers))
    killed: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    while not killed:
        assert time.monotonic() < deadline, "no recompute task was seen running"
        running = {ti["id"] for ti in api.task_instances(DAG_ID, run_id)
                   if ti["task_id"] == "recompute" and ti["state"] == "running"}
        if running and batch_tables(config, layers) != before:
            # a view's new batch table is committed: kill the recompute tasks still at work
            killed = airflow_task_processes(running)
            assert killed, "the recompute tasks ended before they could be killed"
            for proc in killed:
                proc.kill()
        time.sleep(0.05)
    assert never_above(serving_totals(config, layers), expected) == []

    # Airflow sees the task die, retries it, and the run completes
    assert api.wait(DAG_ID, run_id) == "success"
    tries = {ti["map_index"]: ti["try_number"] for ti in api.task_instances(DAG_ID, run_id)
             if ti["task_id"] == "recompute"}
    assert max(tries.values()) >= 2, tries
    wait_for_serving(config, layers, expected)

    # and the next run succeeds, with serving still exact
    assert api.wait(DAG_ID, api.trigger(DAG_ID, conf(layers))) == "success"
    assert serving_totals(config, layers) == expected


def test_a_step_a_crash_left_pending_is_rolled_forward_by_up(config: Config, layers: Layers) -> None:
    """What a batch run leaves when it dies between recording its step and marking it live: `up`
    (serving.reconcile_all) runs the step's statement again and marks it live, and the store then
    says what Trino serves."""
    view = lambda_views()[0]
    name = layers.serving(view)
    before = serving.live(config, name)
    assert before is not None and before.batch_table is not None, "the earlier tests ran no batch run"
    older = next(s for s in serving.batch_steps(config, name) if s.batch_table != before.batch_table)
    # the step of a run that recomputed at the previous B, recorded and then killed before its swap
    sql = serving_view_sql(view, config.iceberg.catalog_name, name, older.speed_table, older.batch_table,
                           older.boundary)
    pending = state.begin_step(config, name, "batch", view.name, None, older.speed_table, older.batch_table,
                                       older.boundary, older.events_snapshot, older.rows_written, "killed-run", sql,
                                       older.started_at)
    assert serving.live(config, name) == before  # the store still says what serving answers
    assert serving.reconcile_all(config) == [(name, None)]
    after = serving.live(config, name)
    assert after is not None and (after.step_id, after.batch_table) == (pending.id, older.batch_table)
    _, [[definition]] = run_query(config, "select view_definition from information_schema.views where "
                                          "table_schema = 'serving' and table_name = ?", [name.split(".")[1]])
    assert older.batch_table.split(".")[1] in definition  # type: ignore[union-attr]
    assert serving.reconcile_all(config) == []
    # and back, through the same path a batch run takes
    with serving.lock(config, name):
        serving.publish(config, view, name, kind="batch", speed_table=before.speed_table,
                        batch_table=before.batch_table, boundary=before.boundary,
                        events_snapshot=before.events_snapshot)
    back = serving.live(config, name)
    assert back is not None and back.batch_table == before.batch_table

    # a pending step whose statement Trino now refuses (its batch table was dropped meanwhile) is
    # marked failed, and the view keeps serving the live step: `up` is not blocked by it
    gone = "batch.dropped_meanwhile__b0"
    sql = serving_view_sql(view, config.iceberg.catalog_name, name, before.speed_table, gone, before.boundary)
    doomed = state.begin_step(config, name, "batch", view.name, None, before.speed_table, gone, before.boundary,
                              before.events_snapshot, 0, "killed-run", sql, older.started_at)
    [(reconciled, error)] = serving.reconcile_all(config)
    assert reconciled == name and error is not None and "dropped_meanwhile__b0" in error, error
    assert [s.id for s in state.steps(config, name, status="failed")][0] == doomed.id
    assert serving.live(config, name) == back
    _, [[definition]] = run_query(config, "select view_definition from information_schema.views where "
                                          "table_schema = 'serving' and table_name = ?", [name.split(".")[1]])
    assert before.batch_table.split(".")[1] in definition  # type: ignore[union-attr]
    assert serving.reconcile_all(config) == []
