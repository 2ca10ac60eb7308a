-- The copies that count, judged once by each batch_recompute run for all its views (its count_copies
-- task, lambdalake.batch.count_copies); each view's batch table is an aggregate of them (sql/batch/<view>.sql).
-- Made by `lambdalake views render --layer batch`; do not edit. An incremental run judges the copies
-- from one horizon before the previous B; a history too large for the batch memory, in event_id slices.
-- It keeps the columns the shipped lambda views read; a run keeps those its own views read.
-- B = 2026-11-26 14:30:00 UTC and snapshot 42 stand for what each run fills in.
create or replace table "lake"."batch"."raw__events__counted" as
with events as (
    select * from "lake"."raw"."events" for version as of 42
    where ingest_time < timestamp '2026-11-26 14:30:00 UTC'
),
copies as (
    select *, lag(ingest_time) over (partition by event_id order by ingest_time, kafka_partition, kafka_offset) as previous_copy_time
    from events
)
select "amount", "event_time", "event_type", "ingest_time", "page", "product_id", "user_id" from copies
where previous_copy_time is null or previous_copy_time < ingest_time - interval '3600' second
