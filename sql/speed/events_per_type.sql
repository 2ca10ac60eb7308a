-- events_per_type v1 (lambda), speed layer: Flink SQL, one branch of the shared speed job (lambdalake.streaming).
-- Made from views/events_per_type.yaml by `lambdalake views render events_per_type --layer speed`; do not edit.
INSERT INTO `lake`.`speed`.`events_per_type`
SELECT
    TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3) AS ingest_bucket,
    TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 60000), 3) AS event_time_bucket,
    `event_type`,
    COUNT(*) AS `events`
FROM TABLE(TUMBLE(TABLE counted_copies, DESCRIPTOR(ingest_time), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3), TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 60000), 3), `event_type`
