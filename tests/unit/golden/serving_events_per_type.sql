create or replace view "lake"."serving"."events_per_type" as
with parts as (
    select event_time_bucket, "event_type", "events" from "lake"."batch"."events_per_type__b202611261430"
    union all
    select event_time_bucket, "event_type", "events" from "lake"."speed"."events_per_type" where ingest_bucket >= timestamp '2026-11-26 14:30:00 UTC'
)
select event_time_bucket, "event_type", sum("events") as "events"
from parts
group by event_time_bucket, "event_type"
