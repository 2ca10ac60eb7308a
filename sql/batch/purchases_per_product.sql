-- purchases_per_product v1 (lambda), batch layer: Trino SQL, selected into batch.purchases_per_product__b202611261430 by each batch_recompute run, from the copies that count, which the run writes once for every view (sql/batch/counted_copies.sql).
-- Made from views/purchases_per_product.yaml by `lambdalake views render purchases_per_product --layer batch`; do not edit.
-- The counted copies' snapshot 43 stands for what each run fills in. A run whose counted copies do not cover the view runs the same aggregate over them as a CTE.
with bucketed as (
    select *, cast(from_unixtime(floor(to_unixtime(event_time) / 3600) * 3600, 'UTC') as timestamp(6) with time zone) as event_time_bucket
    from "lake"."batch"."raw__events__counted" for version as of 43
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
