INSERT INTO `lake`.`speed`.`page_views_per_page`
SELECT
    TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3) AS ingest_bucket,
    TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 60000), 3) AS event_time_bucket,
    `page`,
    COUNT(*) AS `page_views`
FROM TABLE(TUMBLE(TABLE counted_copies, DESCRIPTOR(ingest_time), INTERVAL '5' SECOND))
WHERE `event_type` IN ('page_view')
GROUP BY window_start, window_end, TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3), TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 60000), 3), `page`
