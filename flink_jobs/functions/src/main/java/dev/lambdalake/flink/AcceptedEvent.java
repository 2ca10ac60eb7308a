package dev.lambdalake.flink;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.LocalDate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.types.Row;

/**
 * The ingest rules' fast path in the JVM: emits one row with the accepted event's fields when it
 * is sure that {@code lambdalake.events.validate} (Python, the one definition of a valid event)
 * accepts the record with exactly these fields, and nothing otherwise.
 *
 * <p>It accepts only the plain shapes producers send: strict UTF-8, a JSON object without
 * duplicate keys, a canonical UUID, an ISO-8601 instant {@code YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]}
 * with {@code Z} or {@code ±HH:MM}, an amount that is a plain non-negative number, properties whose
 * values are strings, integers, booleans, nulls, or lists and objects of them. Everything else,
 * every rejection included, is left to the Python rules ({@code lambdalake.streaming} sends the
 * records this function emits nothing for through them), which decide and give the reason. So
 * the two never disagree on a record the JVM decides, and the common record never crosses into
 * Python.
 *
 * <p>The rules' numbers (event types, limits) come from Python as the {@code rules} argument, a
 * JSON object made by {@code lambdalake.events.jvm_rules()}: the same literal on every call,
 * parsed once.
 */
@FunctionHint(output = @DataTypeHint(
        "ROW<event_id STRING, user_id STRING, session_id STRING, event_type STRING, page STRING, "
                + "product_id STRING, amount STRING, event_time_ms BIGINT, properties MAP<STRING, STRING>, "
                + "ingest_ms BIGINT>"))
public class AcceptedEvent extends TableFunction<Row> {

    private static final Pattern UUID = Pattern.compile(
            "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    private static final Pattern INSTANT = Pattern.compile(
            "(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{3}|\\d{6}))?(?:(Z)|([+-])(\\d{2}):(\\d{2}))");
    private static final Pattern PLAIN_AMOUNT = Pattern.compile("\\d{1,15}(?:\\.\\d{1,15})?");
    private static final Pattern PLAIN_FLOAT = Pattern.compile("\\d+(?:\\.\\d+)?(?:[eE][-+]?\\d{1,3})?");
    private static final BigDecimal CENTS = new BigDecimal("0.01");
    private static final long MICROS_PER_DAY = 86_400_000_000L;

    /** A JSON value that is not a string, number, boolean or null: the function leaves it to Python. */
    private static final class Unsure extends Exception {
        Unsure() {
            super(null, null, false, false);
        }
    }

    private static final Unsure UNSURE = new Unsure();

    /** JSON null, kept apart from an absent key only where json.dumps tells them apart (properties). */
    private static final Object NULL = new Object();

    /** A JSON number as Python's json module reads it: an int, or a float with its literal. */
    private record Number(String literal, boolean integral) {}

    private transient JsonFactory json;
    private transient String rulesText;
    private transient Set<String> eventTypes;
    private transient long maxPayloadBytes;
    private transient long maxLatenessMicros;
    private transient long maxClockSkewMicros;
    private transient int maxProperties;
    private transient BigDecimal amountLimit;

    public void eval(byte[] payload, Instant ingestTime, String rules) {
        eval(payload, ingestTime, rules, false);
    }

    /**
     * As the three-argument form; {@code imported}: the record came from a history file (Kafka
     * headers {@code lambdalake-import-*}), so it is exempt from the lateness window, as in
     * {@code validate(..., imported=True)}.
     */
    public void eval(byte[] payload, Instant ingestTime, String rules, Boolean imported) {
        if (payload == null || ingestTime == null) {
            return;
        }
        Row accepted;
        try {
            loadRules(rules);
            accepted = accept(payload, ingestTime.toEpochMilli(), Boolean.TRUE.equals(imported));
        } catch (Unsure | IOException | RuntimeException e) {
            return; // not sure: the Python rules decide
        }
        if (accepted != null) {
            collect(accepted);
        }
    }

    private void loadRules(String rules) throws IOException, Unsure {
        if (rules.equals(rulesText)) {
            return;
        }
        if (json == null) {
            // Python's json reads numbers and nesting of any size: never stop on a limit of Jackson's
            json = JsonFactory.builder()
                    .streamReadConstraints(StreamReadConstraints.builder()
                            .maxNumberLength(Integer.MAX_VALUE).maxNestingDepth(Integer.MAX_VALUE).build())
                    .build();
        }
        Map<String, Object> spec = object(rules);
        Set<String> types = new HashSet<>();
        for (Object type : (List<?>) spec.get("event_types")) {
            types.add((String) type);
        }
        eventTypes = types;
        maxPayloadBytes = Long.parseLong(((Number) spec.get("max_payload_bytes")).literal());
        maxLatenessMicros = Long.parseLong(((Number) spec.get("max_lateness_us")).literal());
        maxClockSkewMicros = Long.parseLong(((Number) spec.get("max_clock_skew_us")).literal());
        maxProperties = Integer.parseInt(((Number) spec.get("max_properties")).literal());
        amountLimit = new BigDecimal((String) spec.get("amount_limit"));
        rulesText = rules;
    }

    /** The accepted event's row, or null when the Python rules must decide. */
    private Row accept(byte[] payload, long ingestMs, boolean imported) throws IOException, Unsure {
        if (payload.length > maxPayloadBytes) {
            return null;
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(payload)).toString();
        } catch (CharacterCodingException e) {
            return null; // Python would decode with replacement characters
        }
        // Python strips every Unicode space before parsing; JSON's own four are all this allows
        String trimmed = trimJsonSpace(text);
        if (!trimmed.startsWith("{") || !trimmed.endsWith("}")) {
            return null;
        }
        Map<String, Object> record = object(trimmed);

        String eventId = required(record, "event_id");
        String userId = required(record, "user_id");
        String sessionId = required(record, "session_id");
        String eventType = required(record, "event_type");
        String page = required(record, "page");
        Object eventTime = record.get("event_time");
        if (eventId == null || userId == null || sessionId == null || eventType == null || page == null
                || !(eventTime instanceof String)) {
            return null;
        }
        if (!UUID.matcher(eventId).matches() || !eventTypes.contains(eventType)) {
            return null;
        }
        Object productValue = record.get("product_id");
        String productId = null;
        if (productValue != null && productValue != NULL) {
            productId = nonBlank(productValue);
            if (productId == null) {
                return null;
            }
        }
        String amount = amount(record.get("amount"), eventType);
        if (amount == null && isPresent(record.get("amount"))) {
            return null;
        }
        if (amount == null && eventType.equals("purchase")) {
            return null;
        }
        Long eventTimeMs = eventTimeMs((String) eventTime, ingestMs, imported);
        if (eventTimeMs == null) {
            return null;
        }
        Map<String, String> properties = properties(record.get("properties"));
        if (properties == null) {
            return null;
        }
        return Row.of(eventId, userId, sessionId, eventType, page, productId, amount, eventTimeMs, properties,
                ingestMs);
    }

    private static boolean isPresent(Object value) {
        return value != null && value != NULL;
    }

    /** A required field as Python's rules take it: a string with something besides spaces. */
    private static String required(Map<String, Object> record, String name) {
        Object value = record.get(name);
        return value == null || value == NULL ? null : nonBlank(value);
    }

    private static String nonBlank(Object value) {
        if (!(value instanceof String text) || hasLoneSurrogate(text)) {
            return null;
        }
        for (int i = 0; i < text.length(); i++) {
            if (!maybePythonSpace(text.charAt(i))) {
                return text;
            }
        }
        return null;
    }

    /** Every character Python's str.isspace() may count as space, and a few more: a superset. */
    private static boolean maybePythonSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085' || c == '\u00a0'
                || c == '\u2007' || c == '\u202f' || (c >= '\u001c' && c <= '\u001f');
    }

    private static boolean hasLoneSurrogate(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return true;
            }
        }
        return false;
    }

    private static String trimJsonSpace(String text) {
        int start = 0;
        int end = text.length();
        while (start < end && isJsonSpace(text.charAt(start))) {
            start++;
        }
        while (end > start && isJsonSpace(text.charAt(end - 1))) {
            end--;
        }
        return text.substring(start, end);
    }

    private static boolean isJsonSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    }

    /**
     * Python's {@code str(Decimal(str(value)).quantize(Decimal("0.01")))} for a plain non-negative
     * amount under the limit; null when absent or when Python must decide.
     */
    private String amount(Object value, String eventType) throws Unsure {
        if (value == null || value == NULL) {
            return null;
        }
        BigDecimal amount;
        if (value instanceof Number number) {
            if (number.integral()) {
                if (!number.literal().matches("\\d{1,15}")) {
                    return null;
                }
                amount = new BigDecimal(number.literal());
            } else {
                // Python goes through a float, then its shortest repr: the literal itself when it has
                // at most 15 significant digits (any two such decimals are different floats)
                if (!PLAIN_FLOAT.matcher(number.literal()).matches()) {
                    return null;
                }
                amount = new BigDecimal(number.literal());
                if (amount.signum() != 0 && amount.stripTrailingZeros().precision() > 15) {
                    return null;
                }
                if (Double.isInfinite(Double.parseDouble(number.literal()))) {
                    return null;
                }
            }
        } else if (value instanceof String text) {
            if (!PLAIN_AMOUNT.matcher(text).matches()) {
                return null;
            }
            amount = new BigDecimal(text);
        } else {
            return null;
        }
        BigDecimal cents = amount.setScale(2, RoundingMode.HALF_EVEN);
        if (amount.abs().compareTo(amountLimit) >= 0 || cents.compareTo(amountLimit) >= 0) {
            return null;
        }
        return cents.toPlainString();
    }

    /**
     * Python's {@code int(datetime.fromisoformat(value).timestamp() * 1000)} for an instant within
     * the lateness window around the ingest time (an imported record: not after the clock skew);
     * null when Python must decide.
     */
    private Long eventTimeMs(String value, long ingestMs, boolean imported) {
        Matcher m = INSTANT.matcher(value);
        if (!m.matches()) {
            return null;
        }
        int hour = Integer.parseInt(m.group(4));
        int minute = Integer.parseInt(m.group(5));
        int second = Integer.parseInt(m.group(6));
        if (hour > 23 || minute > 59 || second > 59) {
            return null;
        }
        long days;
        try {
            days = LocalDate.of(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                    Integer.parseInt(m.group(3))).toEpochDay();
        } catch (DateTimeException e) {
            return null;
        }
        if (Integer.parseInt(m.group(1)) < 1) {
            return null;
        }
        String fraction = m.group(7);
        long micros = fraction == null ? 0 : Long.parseLong((fraction + "000").substring(0, 6));
        long offsetMicros = 0;
        if (m.group(8) == null) {
            int offsetHours = Integer.parseInt(m.group(10));
            int offsetMinutes = Integer.parseInt(m.group(11));
            if (offsetHours > 23 || offsetMinutes > 59) {
                return null;
            }
            offsetMicros = (offsetHours * 3600L + offsetMinutes * 60L) * 1_000_000L;
            if (m.group(9).equals("-")) {
                offsetMicros = -offsetMicros;
            }
        }
        long momentMicros = days * MICROS_PER_DAY + ((hour * 60L + minute) * 60L + second) * 1_000_000L + micros
                - offsetMicros;
        long ingestMicros = ingestMs * 1000L;
        if ((!imported && momentMicros < ingestMicros - maxLatenessMicros)
                || momentMicros > ingestMicros + maxClockSkewMicros) {
            return null;
        }
        // timestamp() divides the exact microseconds by 10**6 into a float; * 1000 and int() as Python
        double seconds = (double) momentMicros / 1e6;
        return (long) (seconds * 1000);
    }

    /** Python's {@code {k: v if isinstance(v, str) else json.dumps(v)}}; null when Python must decide. */
    private Map<String, String> properties(Object value) throws Unsure {
        if (value == null || value == NULL) {
            return new LinkedHashMap<>();
        }
        if (!(value instanceof Map<?, ?> map) || map.size() > maxProperties) {
            return null;
        }
        Map<String, String> properties = new LinkedHashMap<>();
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            String key = (String) entry.getKey();
            Object item = entry.getValue();
            if (hasLoneSurrogate(key)) {
                return null;
            }
            if (item instanceof String text) {
                if (hasLoneSurrogate(text)) {
                    return null;
                }
                properties.put(key, text);
            } else {
                StringBuilder out = new StringBuilder();
                dumps(item, out);
                properties.put(key, out.toString());
            }
        }
        return properties;
    }

    /** json.dumps with its defaults (", " and ": " separators, ASCII only); floats left to Python. */
    private static void dumps(Object value, StringBuilder out) throws Unsure {
        if (value == NULL) {
            out.append("null");
        } else if (value instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (value instanceof Number number) {
            if (!number.integral() || number.literal().length() > 100) {
                throw UNSURE;
            }
            out.append(new BigInteger(number.literal()));
        } else if (value instanceof String text) {
            if (hasLoneSurrogate(text)) {
                throw UNSURE;
            }
            out.append('"');
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    default -> {
                        if (c < ' ' || c > '~') {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            out.append('"');
        } else if (value instanceof List<?> list) {
            out.append('[');
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) {
                    out.append(", ");
                }
                dumps(list.get(i), out);
            }
            out.append(']');
        } else if (value instanceof Map<?, ?> map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                if (!first) {
                    out.append(", ");
                }
                first = false;
                dumps(entry.getKey(), out);
                out.append(": ");
                dumps(entry.getValue(), out);
            }
            out.append('}');
        } else {
            throw UNSURE;
        }
    }

    /** One JSON object, strictly (no NaN, no trailing data), keys in order; Unsure on a repeated key. */
    private Map<String, Object> object(String text) throws IOException, Unsure {
        try (JsonParser parser = json.createParser(text)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                throw UNSURE;
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> result = (Map<String, Object>) value(parser);
            if (parser.nextToken() != null) {
                throw UNSURE;
            }
            return result;
        }
    }

    private static Object value(JsonParser parser) throws IOException, Unsure {
        JsonToken token = parser.currentToken();
        switch (token) {
            case START_OBJECT -> {
                Map<String, Object> map = new LinkedHashMap<>();
                while (parser.nextToken() != JsonToken.END_OBJECT) {
                    String key = parser.currentName();
                    parser.nextToken();
                    if (map.containsKey(key)) {
                        throw UNSURE; // Python keeps the last value in the first place: left to it
                    }
                    map.put(key, value(parser));
                }
                return map;
            }
            case START_ARRAY -> {
                List<Object> list = new ArrayList<>();
                while (parser.nextToken() != JsonToken.END_ARRAY) {
                    list.add(value(parser));
                }
                return list;
            }
            case VALUE_STRING -> {
                return parser.getText();
            }
            case VALUE_NUMBER_INT -> {
                return new Number(parser.getText(), true);
            }
            case VALUE_NUMBER_FLOAT -> {
                return new Number(parser.getText(), false);
            }
            case VALUE_TRUE -> {
                return Boolean.TRUE;
            }
            case VALUE_FALSE -> {
                return Boolean.FALSE;
            }
            case VALUE_NULL -> {
                return NULL;
            }
            default -> throw UNSURE;
        }
    }
}
