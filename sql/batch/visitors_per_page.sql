-- visitors_per_page v1 (lambda), batch layer: Trino SQL, selected into batch.visitors_per_page__b202611261430 by each batch_recompute run.
-- Made from views/visitors_per_page.yaml by `lambdalake views render visitors_per_page --layer batch`; do not edit.
-- B = 2026-11-26 14:30:00 UTC and snapshot 42 stand for what each run fills in.
with events as (
    select * from "lake"."raw"."events" for version as of 42
    where ingest_time < timestamp '2026-11-26 14:30:00 UTC'
),
copies as (
    select *, lag(ingest_time) over (partition by event_id order by ingest_time, kafka_partition, kafka_offset) as previous_copy_time
    from events
),
counted_copies as (
    select * from copies
    where previous_copy_time is null or previous_copy_time < ingest_time - interval '3600' second
),
bucketed as (
    select *, cast(from_unixtime(floor(to_unixtime(event_time) / 3600) * 3600, 'UTC') as timestamp(6) with time zone) as event_time_bucket
    from counted_copies
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
