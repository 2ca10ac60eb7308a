-- page_views_per_page v1 (lambda), batch layer: Trino SQL, selected into batch.page_views_per_page__b202611261430 by each batch_recompute run, from the copies that count, which the run writes once for every view (sql/batch/counted_copies.sql).
-- Made from views/page_views_per_page.yaml by `lambdalake views render page_views_per_page --layer batch`; do not edit.
-- The counted copies' snapshot 43 stands for what each run fills in. A run whose counted copies do not cover the view runs the same aggregate over them as a CTE.
with bucketed as (
    select *, cast(from_unixtime(floor(to_unixtime(event_time) / 60) * 60, 'UTC') as timestamp(6) with time zone) as event_time_bucket
    from "lake"."batch"."raw__events__counted" for version as of 43
)
select
    event_time_bucket,
    "page",
    count(*) as "page_views"
from bucketed
where "event_type" in ('page_view')
group by event_time_bucket, "page"
