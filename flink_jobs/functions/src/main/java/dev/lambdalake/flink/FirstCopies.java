package dev.lambdalake.flink;

import static org.apache.flink.table.annotation.ArgumentTrait.REQUIRE_ON_TIME;
import static org.apache.flink.table.annotation.ArgumentTrait.SET_SEMANTIC_TABLE;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.table.functions.ProcessTableFunction.TimeContext;
import org.apache.flink.types.Row;

/**
 * The speed layer's dedup: the copies of an event that count, by the platform's one rule.
 *
 * <p>A copy counts unless an earlier copy of the same event_id, in log order (ingest time, then
 * Kafka partition, then offset), was ingested at most the horizon before it. Called with the
 * accepted copies partitioned by event_id and their ingest time as {@code on_time}:
 *
 * <pre>
 * first_copies(copies => TABLE accepted PARTITION BY event_id, horizon_ms => 3600000,
 *              on_time => DESCRIPTOR(ingest_time), uid => 'first-copies')
 * </pre>
 *
 * <p>Each copy waits in state until the watermark (the slowest Kafka partition) passes its ingest
 * time, so every copy stamped at or before it, from any partition, has arrived, whatever order the
 * job read them in; then the copies of that instant are judged in log order and the ones that
 * count are emitted, append-only, with their ingest time as the output's {@code rowtime}. What an
 * event_id keeps between its copies is one number, the instant its newest copy's horizon ends,
 * dropped by an event-time timer once that instant has passed: the state is the event_ids of the
 * last horizon, not their rows (the OVER window this replaces kept every row for the horizon).
 *
 * <p>Input columns read by name: the event's fields below, {@code kafka_partition} and {@code
 * kafka_offset}. Output: event_id (the partition key), the event's fields, rowtime.
 */
@FunctionHint(output = @DataTypeHint("ROW<" + FirstCopies.EVENT + ">"))
public class FirstCopies extends ProcessTableFunction<Row> {

    /** The event's fields, passed from each input row to the output unchanged. */
    static final String EVENT = "user_id STRING, session_id STRING, event_type STRING, page STRING, "
            + "product_id STRING, amount DECIMAL(12, 2), event_time_ms BIGINT, ingest_ms BIGINT";

    static final String[] EVENT_FIELDS = {
        "user_id", "session_id", "event_type", "page", "product_id", "amount", "event_time_ms", "ingest_ms"
    };

    /** A copy waiting for the watermark: the event, its place in the log, and the end of its horizon. */
    static final String PENDING = "ROW<" + EVENT + ", kafka_partition INT, kafka_offset BIGINT, horizon_end_ms BIGINT>";

    // a pending copy's fields by position: rows made here have no field names
    private static final int INGEST_MS = 7;
    private static final int PARTITION = 8;
    private static final int OFFSET = 9;
    private static final int HORIZON_END_MS = 10;

    private static final Comparator<Row> LOG_ORDER = Comparator
            .comparing((Row copy) -> copy.<Long>getFieldAs(INGEST_MS))
            .thenComparing(copy -> copy.<Integer>getFieldAs(PARTITION))
            .thenComparing(copy -> copy.<Long>getFieldAs(OFFSET));

    public void eval(
            Context ctx,
            @StateHint(type = @DataTypeHint("ROW<covered_until_ms BIGINT, pending ARRAY<" + PENDING + ">>")) Row copies,
            @ArgumentHint(value = {SET_SEMANTIC_TABLE, REQUIRE_ON_TIME}, name = "copies") Row input,
            @ArgumentHint(name = "horizon_ms") Long horizonMs) {
        Object[] fields = new Object[EVENT_FIELDS.length + 3];
        for (int i = 0; i < EVENT_FIELDS.length; i++) {
            fields[i] = input.getField(EVENT_FIELDS[i]);
        }
        long ingestMs = input.<Long>getFieldAs("ingest_ms");
        fields[PARTITION] = input.getField("kafka_partition");
        fields[OFFSET] = input.getField("kafka_offset");
        fields[HORIZON_END_MS] = ingestMs + horizonMs;
        Row[] pending = copies.getFieldAs("pending");
        Row[] more = pending == null ? new Row[1] : Arrays.copyOf(pending, pending.length + 1);
        more[more.length - 1] = Row.of(fields);
        copies.setField("pending", more);
        // one timer per instant: it judges every copy of this event stamped then
        ctx.timeContext(Long.class).registerOnTime(ingestMs);
    }

    public void onTimer(OnTimerContext ctx, Row copies) {
        TimeContext<Long> time = ctx.timeContext(Long.class);
        long now = time.time();
        Row[] pending = copies.getFieldAs("pending");
        Long coveredUntil = copies.getFieldAs("covered_until_ms");
        List<Row> due = new ArrayList<>();
        List<Row> later = new ArrayList<>();
        if (pending != null) {
            for (Row copy : pending) {
                (copy.<Long>getFieldAs(INGEST_MS) <= now ? due : later).add(copy);
            }
        }
        if (due.isEmpty()) {
            // a horizon's end; if a later copy extended it, its end is still ahead and nothing happens
            if (coveredUntil == null || coveredUntil < now) {
                // the newest copy's horizon has passed: a later copy is a new event
                if (later.isEmpty()) {
                    ctx.clearAllState();
                } else {
                    copies.setField("covered_until_ms", null);
                }
            }
            return;
        }
        due.sort(LOG_ORDER);
        for (Row copy : due) {
            long ingestMs = copy.<Long>getFieldAs(INGEST_MS);
            if (coveredUntil == null || ingestMs > coveredUntil) {
                Object[] event = new Object[EVENT_FIELDS.length];
                for (int i = 0; i < EVENT_FIELDS.length; i++) {
                    event[i] = copy.getField(i);
                }
                collect(Row.of(event));
            }
            // every copy, counted or not, extends the horizon: copies closer than it to the one
            // before are one event, however long the chain
            coveredUntil = copy.getFieldAs(HORIZON_END_MS);
        }
        copies.setField("covered_until_ms", coveredUntil);
        copies.setField("pending", later.isEmpty() ? null : later.toArray(new Row[0]));
        // an unnamed timer, not a named one replaced on each extension: a named timer costs a map
        // state entry per event_id, and clearing it a RocksDB scan; the timers an extension leaves
        // behind fire and find the horizon still running
        time.registerOnTime(coveredUntil + 1);
    }
}
