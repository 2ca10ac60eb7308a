-- purchases_per_product v1 (lambda), serving layer: Trino SQL, the view users query, replaced in one statement by each batch run.
-- Made from views/purchases_per_product.yaml by `lambdalake views render purchases_per_product --layer serving`; do not edit.
-- B = 2026-11-26 14:30:00 UTC and its batch table stand for what each run fills in.
create or replace view "lake"."serving"."purchases_per_product" as
with parts as (
    select event_time_bucket, "product_id", "purchases", "revenue", "largest_purchase" from "lake"."batch"."purchases_per_product__b202611261430"
    union all
    select event_time_bucket, "product_id", "purchases", "revenue", "largest_purchase" from "lake"."speed"."purchases_per_product" where ingest_bucket >= timestamp '2026-11-26 14:30:00 UTC'
)
select event_time_bucket, "product_id", sum("purchases") as "purchases", sum("revenue") as "revenue", max("largest_purchase") as "largest_purchase"
from parts
group by event_time_bucket, "product_id"
