-- events_per_type v1 (lambda), serving layer: Trino SQL, the view users query, replaced in one statement by each batch run.
-- Made from views/events_per_type.yaml by `lambdalake views render events_per_type --layer serving`; do not edit.
-- B = 2026-11-26 14:30:00 UTC and its batch table stand for what each run fills in.
create or replace view "lake"."serving"."events_per_type" as
with parts as (
    select event_time_bucket, "event_type", "events" from "lake"."batch"."events_per_type__b202611261430"
    union all
    select event_time_bucket, "event_type", "events" from "lake"."speed"."events_per_type" where ingest_bucket >= timestamp '2026-11-26 14:30:00 UTC'
)
select event_time_bucket, "event_type", sum("events") as "events"
from parts
group by event_time_bucket, "event_type"
