"""lambdalake.query.run_delete: which refusals it tries again, and how often."""

from __future__ import annotations

from typing import Any

import pytest

from lambdalake import query
from lambdalake.config import Config
from lambdalake.errors import QueryError

CONFLICT = QueryError("Trino: ICEBERG_COMMIT_ERROR: Found conflicting files ...", "ICEBERG_COMMIT_ERROR")


def answers(monkeypatch: pytest.MonkeyPatch, *outcomes: Exception | None) -> list[str]:
    """Make run_query raise or answer, in turn, what outcomes say; return the statements it got."""
    sent: list[str] = []
    pending = list(outcomes)

    def run_query(config: Config, sql: str, params: Any = None) -> tuple[list[str], list[list[Any]]]:
        sent.append(sql)
        outcome = pending.pop(0)
        if outcome is not None:
            raise outcome
        return ["rows"], [[3]]

    monkeypatch.setattr(query, "run_query", run_query)
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda seconds: None)
    return sent


def test_a_delete_a_concurrent_commit_refused_is_sent_again_until_it_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = answers(monkeypatch, CONFLICT, CONFLICT, None)
    assert query.run_delete(Config(), "delete from meta.t where view = ?", ["v"]) == (["rows"], [[3]])
    assert len(sent) == 3


def test_a_delete_refused_for_another_reason_is_not_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = answers(monkeypatch, QueryError("Trino: TABLE_NOT_FOUND: Table 'lake.meta.t' does not exist",
                                           "TABLE_NOT_FOUND"))
    with pytest.raises(QueryError, match="TABLE_NOT_FOUND"):
        query.run_delete(Config(), "delete from meta.t where view = ?", ["v"])
    assert len(sent) == 1


def test_a_delete_refused_every_time_raises_the_last_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = answers(monkeypatch, *[CONFLICT] * query.DELETE_ATTEMPTS)
    with pytest.raises(QueryError, match="ICEBERG_COMMIT_ERROR"):
        query.run_delete(Config(), "delete from meta.t where view = ?", ["v"])
    assert len(sent) == query.DELETE_ATTEMPTS
