-- purchases_per_product v1 (lambda), batch layer: Trino SQL, selected into batch.purchases_per_product__b202611261430 by each batch_recompute run.
-- Made from views/purchases_per_product.yaml by `lambdalake views render purchases_per_product --layer batch`; do not edit.
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
    "product_id",
    count(*) as "purchases",
    sum("amount") as "revenue",
    max("amount") as "largest_purchase"
from bucketed
where "event_type" in ('purchase')
group by event_time_bucket, "product_id"
