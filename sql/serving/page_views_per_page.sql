-- page_views_per_page v1 (lambda), serving layer: Trino SQL, the view users query, replaced in one statement by each batch run.
-- Made from views/page_views_per_page.yaml by `lambdalake views render page_views_per_page --layer serving`; do not edit.
-- B = 2026-11-26 14:30:00 UTC and its batch table stand for what each run fills in.
create or replace view "lake"."serving"."page_views_per_page" as
with parts as (
    select event_time_bucket, "page", "page_views" from "lake"."batch"."page_views_per_page__b202611261430"
    union all
    select event_time_bucket, "page", "page_views" from "lake"."speed"."page_views_per_page" where ingest_bucket >= timestamp '2026-11-26 14:30:00 UTC'
)
select event_time_bucket, "page", sum("page_views") as "page_views"
from parts
group by event_time_bucket, "page"
