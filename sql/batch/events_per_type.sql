-- events_per_type v1 (lambda), batch layer: Trino SQL, selected into batch.events_per_type__b202611261430 by each batch_recompute run.
-- Made from views/events_per_type.yaml by `lambdalake views render events_per_type --layer batch`; do not edit.
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
    select *, cast(from_unixtime(floor(to_unixtime(event_time) / 60) * 60, 'UTC') as timestamp(6) with time zone) as event_time_bucket
    from counted_copies
)
select
    event_time_bucket,
    "event_type",
    count(*) as "events"
from bucketed
group by event_time_bucket, "event_type"
