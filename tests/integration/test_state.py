"""The state store's record of speed tables (lambdalake_speed_tables), on the real PostgreSQL: what
a version runs, and which versions exist, come from here and never from table names or properties."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from lambdalake import state
from lambdalake.config import Config
from lambdalake.errors import EngineError


@pytest.fixture
def view_name(config: Config) -> Iterator[str]:
    name = f"test_state_{uuid.uuid4().hex[:8]}"
    yield name
    state.forget_speed_tables(config, name)


def definition(version: int, filter_value: str = "page_view") -> dict:  # type: ignore[type-arg]
    return {"name": "x", "version": version, "filter": {"event_type": [filter_value]}}


def test_a_table_keeps_the_definition_it_was_made_for_until_it_is_made_again(config: Config, view_name: str) -> None:
    table = f"speed.{view_name}__v1"
    made = state.pin_speed_table(config, table, "uuid-1", view_name, 1, definition(1))
    assert (made.definition, made.version, made.retired_at) == (definition(1), 1, None)

    # the same table again (a restart, a retried step): what it was made for stays
    again = state.pin_speed_table(config, table, "uuid-1", view_name, 1, definition(1, "click"))
    assert again.definition == definition(1) and again.created_at == made.created_at

    retired_at = state.retire_speed_table(config, table)
    time.sleep(0.01)
    assert state.retire_speed_table(config, table) == retired_at, "retired twice"

    # dropped behind the platform's back and made again under the same name: another table
    remade = state.pin_speed_table(config, table, "uuid-2", view_name, 1, definition(1, "click"))
    assert (remade.definition, remade.retired_at, remade.table_uuid) == (definition(1, "click"), None, "uuid-2")


def test_versions_are_the_recorded_tables_not_dropped_oldest_first(config: Config, view_name: str) -> None:
    base = f"speed.{view_name}"
    state.pin_speed_table(config, base, "uuid-base", view_name, None, definition(1))
    for number in (3, 2):
        state.pin_speed_table(config, f"{base}__v{number}", f"uuid-{number}", view_name, number, definition(number))
    assert [t.version for t in state.version_tables(config, view_name)] == [2, 3]

    state.set_speed_job(config, base, {"topic": "events", "views": []})
    cutoff = state.retire_speed_table(config, base)
    state.set_restart_cutoff(config, base, cutoff)
    recorded = state.speed_table(config, base)
    assert recorded is not None and recorded.speed_job == {"topic": "events", "views": []}
    assert recorded.restart_cutoff == cutoff

    state.speed_table_dropped(config, f"{base}__v2")
    assert [t.version for t in state.version_tables(config, view_name)] == [3]
    assert state.speed_table(config, f"{base}__v2") is None
    # time travel still needs the logic of a dropped table's answers
    dropped = state.speed_table(config, f"{base}__v2", dropped=True)
    assert dropped is not None and dropped.definition == definition(2) and dropped.dropped_at is not None


def test_retiring_a_table_the_platform_never_made_is_refused(config: Config, view_name: str) -> None:
    with pytest.raises(EngineError, match="not a speed table the platform made"):
        state.retire_speed_table(config, f"speed.{view_name}")


def test_trino_clients_read_the_store_s_history_from_its_copy_in_the_lake(config: Config, view_name: str) -> None:
    """meta.serving_steps, rewritten whole from the store (as platform_health does), read back
    through Trino: the same steps, the live one marked; a forgotten view's steps go with the next copy."""
    from datetime import datetime, timezone

    from lambdalake.query import run_query

    serving_view = f"serving.{view_name}"
    now = datetime.now(timezone.utc)
    made = [state.begin_step(config, serving_view, kind, view_name, None, f"speed.{view_name}", batch, boundary,
                             7, 12, "run-1", "-- not run", now)
            for kind, batch, boundary in [("create", None, None), ("batch", f"batch.{view_name}__b1", now)]]
    for step in made:
        state.step_live(config, step.id)
    try:
        state.copy_to_lake(config, now)
        _, rows = run_query(config, "select id, kind, status, is_live, batch_table, boundary, copied_at "
                                    "from meta.serving_steps where serving_view = ? order by id", [serving_view])
        assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
            (made[0].id, "create", "live", False, None), (made[1].id, "batch", "live", True, f"batch.{view_name}__b1")]
        assert rows[1][5] == now and rows[1][6] == now
    finally:
        state.forget_serving(config, serving_view)
    state.copy_to_lake(config, datetime.now(timezone.utc))
    _, rows = run_query(config, "select count(*) from meta.serving_steps where serving_view = ?", [serving_view])
    assert rows == [[0]]
