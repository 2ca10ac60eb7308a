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
