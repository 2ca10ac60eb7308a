"""
### Batch recompute

Recomputes every **lambda** view from the master dataset (`raw.events`) and swaps it into
`serving.<view>`. One run at a time, so a full run and an incremental one never overlap:

1. **boundary** — chooses B, the newest whole ingest minute below which `raw.events` is provably
   complete, and the Iceberg snapshot every view of this run reads.
2. **count_copies** — judges every copy below B once, for all the views, by the dedup rule the
   speed layer applies too, into `batch.<schema>__<events table>__counted` (recorded in the state
   store with what it was judged from).
3. **recompute** (one task per view) — writes `batch.<view>__b<B>` with Trino, an aggregate of
   those counted copies, then replaces `serving.<view>` in one
   statement: batch below B, speed at or after B. Readers never see a new batch with an old boundary.
   A run is **incremental**: it adds the copies that arrived since the previous run's B to the
   previous batch table. It is **full** (the whole master dataset) when the param `full` is on,
   on a view's first run, or when its last full run is older than `[batch] full_recompute_every`
   (daily by default). The task log says which, and why.
4. **expire_speed** (one task per view) — deletes the speed rows below the previous run's B:
   no serving query reads them any more.
5. **drop_counted** — drops the counted copies once every view is done, whether or not it succeeded.

Runs on `[batch] schedule`, and on an asset event on the master dataset (`lake://raw/events`),
which the `backfill` DAG emits once the history it loaded is ingested. Safe to retry at any step. The params select views or another set of tables (used by tests).
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Asset, AssetAlias, Param, TriggerRule, dag, task

from lambdalake import names
from lambdalake.config import load_config
from lambdalake.dag_defaults import clock_or_asset, dag_defaults
from lambdalake.views import lambda_views


#: the batch tables a run wrote: one asset event per view, on `lake://batch/<view>`
BATCH_TABLES = AssetAlias("lambdalake-batch-tables")


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    **dag_defaults(),
    schedule=clock_or_asset(load_config().batch.schedule, "lake://raw/events"),
    tags=["lambdalake", "batch"],
    params={
        "views": Param([], type="array", items={"type": "string", "pattern": names.VIEW_PATTERN},
                       examples=[view.name for view in lambda_views()],
                       title="Views", description="Only these views; empty means every lambda view."),
        "topic": Param(None, type=["null", "string"], pattern=names.TOPIC_PATTERN,
                       title="Kafka topic", description="Empty: the config's events topic."),
        "events_table": Param("raw.events", type="string", pattern=names.TABLE_PATTERN, title="Master dataset"),
        "rejected_table": Param("raw.events_rejected", type="string", pattern=names.TABLE_PATTERN,
                                title="Rejected records"),
        "full": Param(False, type="boolean", title="Full recompute",
                      description="Recompute from the whole master dataset (after fixing data or a view's "
                                  "logic). Off: add only what arrived since the last run, unless the last "
                                  "full run is older than [batch] full_recompute_every."),
        # optional: a Param with an empty default is shown as required, and the Trigger button stays
        # disabled until it is filled in
        "suffix": Param(None, type=["null", "string"], pattern=names.SUFFIX_PATTERN, title="Table suffix",
                        description="Appended to speed, batch and serving table names; empty: none."),
    },
)
def batch_recompute() -> None:
    @task
    def boundary(params: dict) -> dict | None:  # type: ignore[type-arg]
        from lambdalake.batch import choose_boundary, layers_from

        chosen = choose_boundary(load_config(), layers_from(load_config(), params))
        return None if chosen is None else {"moment": chosen.moment.isoformat(), "snapshot": chosen.events_snapshot}

    @task
    def views(params: dict) -> list[str]:  # type: ignore[type-arg]
        from airflow.sdk.exceptions import AirflowFailException

        known = [v.name for v in lambda_views()]
        unknown = sorted(set(params["views"]) - set(known))
        if unknown:  # the form checks each name's pattern; only this task knows the views
            raise AirflowFailException(f"param views: unknown view(s) {', '.join(unknown)}; "
                                       f"the lambda views are {', '.join(known)}")
        return [name for name in known if not params["views"] or name in params["views"]]

    @task
    def count_copies(views: list[str], chosen: dict | None, params: dict) -> dict | None:  # type: ignore[type-arg]
        from lambdalake.batch import count_copies_by_name

        if chosen is None:
            print("nothing is complete in the master dataset yet, so there is no boundary; nothing done")
            return None
        counted = count_copies_by_name(load_config(), params, views, chosen)
        if counted is None:
            print(f"no copies judged: every view's run has nothing to do at B={chosen['moment']}")
        else:
            print(f"{counted['rows']} copies count below B={chosen['moment']} (judged from "
                  f"{counted['ingest_from'] or 'the start of history'}, {counted['slices']} event_id slice(s)), "
                  f"in {counted['table']} snapshot {counted['snapshot']}, in {counted['seconds']} s")
        return counted

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def drop_counted(params: dict) -> None:  # type: ignore[type-arg]
        from lambdalake.batch import drop_counted_by_name

        drop_counted_by_name(load_config(), params)

    # one asset event per view written, through the alias (static outlets would emit every view's)
    @task(outlets=[BATCH_TABLES], map_index_template="{{ task.op_kwargs['view'] }}")
    def recompute(view: str, chosen: dict | None, params: dict, run_id: str | None = None,  # type: ignore[type-arg]
                  outlet_events=None) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
        from lambdalake.batch import recompute_by_name

        if chosen is None:
            print(f"{view}: nothing is complete in the master dataset yet, so there is no boundary; nothing done")
            return None
        done = recompute_by_name(load_config(), params, view, chosen, run_id)
        if done is None:
            print(f"{view}: a reprocessing switched serving to another version meanwhile; the next run recomputes it")
            return None
        if "skipped" in done:  # nothing written: no asset event
            print(f"{view}: nothing done at B={chosen['moment']}: {done['skipped']}")
            return None
        print(f"{view}: {done['serving_view']} now reads {done['batch_table']} below B={done['boundary']} "
              f"(was {done['boundary_before']}): {done['rows']} rows written in {done['seconds']} s; {done['reason']}")
        outlet_events[BATCH_TABLES].add(Asset(f"lake://batch/{done['serving_view'].split('.', 1)[1]}"), extra=done)
        return done

    @task
    def expire_speed(view: str, params: dict) -> str | None:  # type: ignore[type-arg]
        from lambdalake.batch import expire_by_name

        return expire_by_name(load_config(), params, view)

    chosen_views, chosen = views(), boundary()
    counted = count_copies(chosen_views, chosen)
    recomputed = recompute.partial(chosen=chosen).expand(view=chosen_views)
    counted >> recomputed >> [expire_speed.expand(view=chosen_views), drop_counted()]


batch_recompute()
