-- visitors_per_page v1 (lambda), speed layer: Flink SQL, one branch of the shared speed job (lambdalake.streaming).
-- Made from views/visitors_per_page.yaml by `lambdalake views render visitors_per_page --layer speed`; do not edit.
-- counted_copies: the copies that count, by the one dedup rule (lambdalake.streaming.register_counted_copies).
insert into `lake`.`speed`.`visitors_per_page`
with bucketed as (
    select *,
        to_timestamp_ltz(ingest_ms - mod(ingest_ms, 60000), 3) as ingest_bucket,
        to_timestamp_ltz(event_time_ms - mod(event_time_ms, 3600000), 3) as event_time_bucket
    from counted_copies
)
select
    ingest_bucket,
    event_time_bucket,
    `page`,
    array_agg(distinct `user_id` ignore nulls) as `visitors_ids`
from table(tumble(table bucketed, descriptor(ingest_time), interval '1' second))
where `event_type` in ('page_view')
group by window_start, window_end, ingest_bucket, event_time_bucket, `page`
