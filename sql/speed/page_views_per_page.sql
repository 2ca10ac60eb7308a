-- page_views_per_page v1 (lambda), speed layer: Flink SQL, one branch of the shared speed job (lambdalake.streaming).
-- Made from views/page_views_per_page.yaml by `lambdalake views render page_views_per_page --layer speed`; do not edit.
INSERT INTO `lake`.`speed`.`page_views_per_page`
SELECT
    TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3) AS ingest_bucket,
    TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 60000), 3) AS event_time_bucket,
    `page`,
    COUNT(*) AS `page_views`
FROM TABLE(TUMBLE(TABLE counted_copies, DESCRIPTOR(ingest_time), INTERVAL '1' SECOND))
WHERE `event_type` IN ('page_view')
GROUP BY window_start, window_end, TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3), TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 60000), 3), `page`
