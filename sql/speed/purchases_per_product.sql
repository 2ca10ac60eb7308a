-- purchases_per_product v1 (lambda), speed layer: Flink SQL, one branch of the shared speed job (lambdalake.streaming).
-- Made from views/purchases_per_product.yaml by `lambdalake views render purchases_per_product --layer speed`; do not edit.
-- counted_copies: the copies that count, by the one dedup rule (lambdalake.streaming.register_counted_copies).
insert into `lake`.`speed`.`purchases_per_product`
with bucketed as (
    select *,
        to_timestamp_ltz(ingest_ms - mod(ingest_ms, 60000), 3) as ingest_bucket,
        to_timestamp_ltz(event_time_ms - mod(event_time_ms, 3600000), 3) as event_time_bucket
    from counted_copies
)
select
    ingest_bucket,
    event_time_bucket,
    `product_id`,
    count(*) as `purchases`,
    sum(`amount`) as `revenue`,
    max(`amount`) as `largest_purchase`
from table(tumble(table bucketed, descriptor(ingest_time), interval '1' second))
where `event_type` in ('purchase')
group by window_start, window_end, ingest_bucket, event_time_bucket, `product_id`
