"""Every DAG file parses without import errors, quickly and without touching a database."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))


def test_there_are_dags() -> None:
    assert DAG_FILES


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[f.stem for f in DAG_FILES])
def test_dag_file_loads_with_docs_and_tags(dag_file: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    assert bag.dags, f"{dag_file.name} defines no DAG"
    for dag in bag.dags.values():
        assert dag.dag_id == dag_file.stem
        assert dag.doc_md and dag.doc_md.strip()
        assert "lambdalake" in dag.tags
        for task in dag.tasks:
            assert task.owner == "lambdalake", task.task_id
            assert task.retries >= 1, task.task_id


@pytest.mark.parametrize("value", ["0 s", "30 s", "2 min", "1h", "500 ms", "1.5 hours", "x", "-1 s", "1 week", "",
                                   "5 s; drop"])
def test_platform_healths_grace_param_takes_exactly_the_durations_the_check_reads(value: str) -> None:
    """The form refuses what the `views` task could not read, and only that."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamValidationError

    from lambdalake.config import duration_seconds
    from lambdalake.errors import ConfigError

    [dag] = DagBag(dag_folder=str(DAGS_FOLDER / "platform_health.py")).dags.values()
    param = dag.params.get_param("freshness_grace")
    assert param.resolve(None) is None  # optional: scheduled runs use [serving] freshness_grace
    try:
        duration_seconds(value, "param freshness_grace")
        readable = True
    except ConfigError as error:
        readable = False
        assert repr(value) in str(error) and "such as" in str(error)
    try:
        param.resolve(value)
        accepted = True
    except ParamValidationError:
        accepted = False
    assert accepted == readable, value


SCHEDULES = ("LAMBDALAKE__BATCH__SCHEDULE", "LAMBDALAKE__MAINTENANCE__SCHEDULE", "LAMBDALAKE__SERVING__HEALTH_SCHEDULE")


def loaded_dag(name: str):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    [dag] = DagBag(dag_folder=str(DAGS_FOLDER / f"{name}.py")).dags.values()
    return dag


def test_batch_recompute_runs_on_its_clock_or_on_the_asset_event_backfill_emits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Asset

    from lambdalake.config import load_config

    for name in SCHEDULES:  # the defaults, whatever `make test` set (Makefile)
        monkeypatch.delenv(name, raising=False)
    dag = loaded_dag("batch_recompute")
    assert dag.timetable.asset_condition == Asset("lake://raw/events")
    assert load_config().batch.schedule == "@hourly" and dag.timetable.timetable.expression == "0 * * * *"
    backfill = loaded_dag("backfill")
    assert backfill.params.get_param("paths").schema["minItems"] == 1  # the form cannot be sent without files
    assert loaded_dag("iceberg_maintenance").timetable.expression == "0 * * * *"
    assert loaded_dag("platform_health").timetable.expression == "*/5 * * * *"


def test_an_empty_schedule_leaves_a_dag_to_its_triggers(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Asset

    for name in SCHEDULES:
        monkeypatch.setenv(name, "")
    batch = loaded_dag("batch_recompute").timetable
    assert type(batch).__name__ == "AssetTriggeredTimetable", batch  # no clock
    assert Asset("lake://raw/events") in batch.asset_condition.objects
    for name in ("iceberg_maintenance", "platform_health"):
        assert type(loaded_dag(name).timetable).__name__ == "NullTimetable", name


def test_batch_recompute_judges_the_copies_once_before_the_views_and_drops_them_after_whatever_happened() -> None:
    from airflow.dag_processing.dagbag import DagBag

    [dag] = DagBag(dag_folder=str(DAGS_FOLDER / "batch_recompute.py")).dags.values()
    tasks = dag.task_dict
    assert tasks["count_copies"].upstream_task_ids == {"views", "boundary"}
    assert "count_copies" in tasks["recompute"].upstream_task_ids
    assert tasks["drop_counted"].upstream_task_ids == {"recompute"}
    assert tasks["drop_counted"].trigger_rule == "all_done"
