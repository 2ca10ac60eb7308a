-- visitors_per_page v1 (lambda), serving layer: Trino SQL, the view users query, replaced in one statement by each batch run.
-- Made from views/visitors_per_page.yaml by `lambdalake views render visitors_per_page --layer serving`; do not edit.
-- B = 2026-11-26 14:30:00 UTC and its batch table stand for what each run fills in.
create or replace view "lake"."serving"."visitors_per_page" as
with parts as (
    select event_time_bucket, "page", "visitors", "visitors_sketch" from "lake"."batch"."visitors_per_page__b202611261430"
    union all
    select event_time_bucket, "page", cast(null as bigint) as "visitors", (select cast(approx_set(distinct_value) as varbinary) from unnest("visitors_ids") as distinct_values(distinct_value)) as "visitors_sketch" from "lake"."speed"."visitors_per_page" where ingest_bucket >= timestamp '2026-11-26 14:30:00 UTC'
)
select event_time_bucket, "page", if(bool_and("visitors" is not null), sum("visitors"), coalesce(cardinality(merge(cast("visitors_sketch" as HyperLogLog))), 0)) as "visitors", bool_and("visitors" is not null) as "visitors_is_exact", cast(merge(cast("visitors_sketch" as HyperLogLog)) as varbinary) as "visitors_sketch"
from parts
group by event_time_bucket, "page"
