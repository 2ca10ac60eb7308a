-- visitors_per_page v1 (lambda), batch layer: Trino SQL, selected into batch.visitors_per_page__b202611261430 by each batch_recompute run, from the copies that count, which the run writes once for every view (sql/batch/counted_copies.sql).
-- Made from views/visitors_per_page.yaml by `lambdalake views render visitors_per_page --layer batch`; do not edit.
-- The counted copies' snapshot 43 stands for what each run fills in. A run whose counted copies do not cover the view runs the same aggregate over them as a CTE.
with bucketed as (
    select *, cast(from_unixtime(floor(to_unixtime(event_time) / 3600) * 3600, 'UTC') as timestamp(6) with time zone) as event_time_bucket
    from "lake"."batch"."raw__events__counted" for version as of 43
)
select
    event_time_bucket,
    "page",
    count(distinct "user_id") as "visitors",
    cast(approx_set("user_id") as varbinary) as "visitors_sketch",
    coalesce(array_agg(distinct "user_id") filter (where "user_id" is not null), cast(array[] as array(varchar))) as "visitors_ids"
from bucketed
where "event_type" in ('page_view')
group by event_time_bucket, "page"
