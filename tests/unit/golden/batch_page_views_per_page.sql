with events as (
    select * from "lake"."raw"."events" for version as of 42
),
arrivals as (
    select *, row_number() over (partition by event_id order by ingest_time, kafka_partition, kafka_offset) as arrival
    from events
),
first_arrivals as (
    select * from arrivals where arrival = 1
)
select
    cast(from_unixtime(floor(to_unixtime(event_time) / 60) * 60, 'UTC') as timestamp(6) with time zone) as event_time_bucket,
    "page",
    count(*) as "page_views"
from first_arrivals
where ingest_time < timestamp '2026-11-26 14:30:00 UTC'
  and "event_type" in ('page_view')
group by 1, "page"
