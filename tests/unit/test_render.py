"""The SQL committed under sql/ is what the jobs and DAGs run: rendered again here, it must match."""

from __future__ import annotations

from datetime import datetime, timezone

import subprocess
import sys
from pathlib import Path

import pytest

from lambdalake.config import load_config
from lambdalake.render import COUNTED_FILE, LAYERS, SQL_DIR, render, render_counted_copies, sql_file
from lambdalake.views import View, load_views

#: B and the start of an incremental run, as a batch run passes them
B = datetime(2026, 11, 26, 14, 30, tzinfo=timezone.utc)

SHIPPED = [view for view in load_views() if not view.name.startswith("test_")]  # tests add views of their own


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("view", SHIPPED, ids=lambda v: v.name)
def test_the_committed_sql_is_what_runs(view: View, layer: str) -> None:
    path = sql_file(view, layer)
    assert path.exists(), f"{path} is missing: run `make sql` and commit it"
    assert path.read_text() == render(load_config(), view, layer), f"{path} is stale: run `make sql` and commit it"


def test_the_committed_counted_copies_sql_is_what_runs() -> None:
    assert COUNTED_FILE.exists(), f"{COUNTED_FILE} is missing: run `make sql` and commit it"
    assert COUNTED_FILE.read_text() == render_counted_copies(load_config()), f"{COUNTED_FILE} is stale: run `make sql`"


def test_no_sql_file_outlives_its_view() -> None:
    expected = {sql_file(view, layer) for view in SHIPPED for layer in LAYERS} | {COUNTED_FILE}
    committed = {path for layer in LAYERS for path in (SQL_DIR / layer).glob("*.sql")}
    assert committed <= expected, f"no view defines {sorted(committed - expected)}: delete them"


def test_render_prints_one_layer_and_refuses_a_bad_name() -> None:
    cli = Path(sys.executable).with_name("lambdalake")
    out = subprocess.run([cli, "views", "render", "events_per_type", "--layer", "batch"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # one view's batch SQL aggregates the run's counted copies; rendering every view adds the dedup that writes them
    assert '"batch"."raw__events__counted" for version as of 43' in out.stdout and "insert into" not in out.stdout
    assert "lag(ingest_time) over" not in out.stdout
    every = subprocess.run([cli, "views", "render", "--layer", "batch"], capture_output=True, text=True, timeout=60)
    assert every.returncode == 0, every.stderr
    assert every.stdout.count("lag(ingest_time) over (partition by event_id") == 1, every.stdout
    bad = subprocess.run([cli, "views", "render", "x'; drop table raw.events"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1 and "must be lowercase letters" in bad.stderr, bad.stderr


def test_the_split_query_reads_the_same_parts_as_the_serving_view() -> None:
    from lambdalake.derive import serving_select_sql, serving_split_sql
    from lambdalake.views import load_views

    view = next(v for v in load_views() if v.name == "purchases_per_product")
    split = serving_split_sql(view, "lake", "speed.purchases_per_product", "batch.purchases_per_product__b1",
                              B)
    served = serving_select_sql(view, "lake", "speed.purchases_per_product", "batch.purchases_per_product__b1",
                                B)
    assert split.count("union all") == 1 and "'batch' as layer" in split and "'speed' as layer" in split
    assert "where ingest_bucket >= timestamp '2026-11-26 14:30:00 UTC'" in split
    assert served.count("where ingest_bucket >= timestamp '2026-11-26 14:30:00 UTC'") == 1
    additive = next(m for m in view.measures if m.agg in ("count", "sum"))
    assert f'sum("{additive.name}")' in split
    # before the first batch run, speed alone
    assert "'batch'" not in serving_split_sql(view, "lake", "speed.purchases_per_product", None, None)
