-- events_per_type v1 (lambda), speed layer: Flink SQL, one branch of the shared speed job (lambdalake.streaming).
-- Made from views/events_per_type.yaml by `lambdalake views render events_per_type --layer speed`; do not edit.
-- counted_copies: the copies that count, by the one dedup rule (lambdalake.streaming.register_counted_copies).
insert into `lake`.`speed`.`events_per_type`
with bucketed as (
    select *,
        to_timestamp_ltz(ingest_ms - mod(ingest_ms, 60000), 3) as ingest_bucket,
        to_timestamp_ltz(event_time_ms - mod(event_time_ms, 60000), 3) as event_time_bucket
    from counted_copies
)
select
    ingest_bucket,
    event_time_bucket,
    `event_type`,
    count(*) as `events`
from table(tumble(table bucketed, descriptor(ingest_time), interval '1' second))
group by window_start, window_end, ingest_bucket, event_time_bucket, `event_type`
