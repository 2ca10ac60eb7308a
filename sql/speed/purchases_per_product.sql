-- purchases_per_product v1 (lambda), speed layer: Flink SQL, one branch of the shared speed job (lambdalake.streaming).
-- Made from views/purchases_per_product.yaml by `lambdalake views render purchases_per_product --layer speed`; do not edit.
INSERT INTO `lake`.`speed`.`purchases_per_product`
SELECT
    TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3) AS ingest_bucket,
    TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 3600000), 3) AS event_time_bucket,
    `product_id`,
    COUNT(*) AS `purchases`,
    SUM(`amount`) AS `revenue`,
    MAX(`amount`) AS `largest_purchase`
FROM TABLE(TUMBLE(TABLE counted_copies, DESCRIPTOR(ingest_time), INTERVAL '1' SECOND))
WHERE `event_type` IN ('purchase')
GROUP BY window_start, window_end, TO_TIMESTAMP_LTZ(ingest_ms - MOD(ingest_ms, 60000), 3), TO_TIMESTAMP_LTZ(event_time_ms - MOD(event_time_ms, 3600000), 3), `product_id`
