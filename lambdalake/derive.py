"""Everything made from a view definition, in one place: its tables and the SQL of each layer.

The speed layer's Flink SQL, the batch recompute and the Trino serving view are all made here,
so no view is ever written twice, and both layers apply one dedup rule. Names reaching SQL come
from validated definitions (lambdalake.views) and are quoted by lambdalake.names, per dialect;
filter values are escaped literals, and instants (B, the start of an incremental run, an as-of
instant) come as datetimes, written by trino_timestamp alone.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from lambdalake.names import TableName, flink_ident, trino_ident, trino_table
from lambdalake.views import INGEST_BUCKET_MINUTES, Measure, View, source_columns

#: columns every speed row starts with: where its events entered the log, and their bucket
KEY_COLUMNS = ("ingest_bucket", "event_time_bucket")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def measure_type(view: View, agg: str, column: str | None) -> str:
    """The Iceberg type of a measure: counts are longs, sums widen, min and max keep the type."""
    if agg == "count":
        return "long"
    if agg == "count_distinct":
        return "list<string>"
    source_type = source_columns(view.source)[column]  # type: ignore[index]
    if agg == "sum":
        return "decimal(38,2)" if source_type.startswith("decimal") else "long"
    return source_type


def speed_fields(view: View) -> list[dict[str, Any]]:
    """The speed table's columns, in order: ingest bucket, event-time bucket, dimensions, measures."""
    columns = source_columns(view.source)
    return [
        {"name": "ingest_bucket", "type": "timestamptz", "required": True,
         "doc": f"start of the {INGEST_BUCKET_MINUTES}-minute bucket in which the events reached Kafka"},
        {"name": "event_time_bucket", "type": "timestamptz", "required": True,
         "doc": f"start of the {view.bucket_minutes}-minute event-time bucket"},
        *({"name": d, "type": columns[d]} for d in view.dimensions),
        *({"name": name, "type": measure_type(view, m.agg, m.column), "required": m.agg == "count"}
          for m in view.measures for name in speed_columns(m)),
    ]


def speed_columns(measure: Measure) -> tuple[str, ...]:
    """The speed table's columns of one measure: its partial aggregate, or for count_distinct the
    window's distinct values (`<name>_ids`), which serving turns into a sketch."""
    return (f"{measure.name}_ids",) if measure.agg == "count_distinct" else (measure.name,)


def speed_partition_by() -> list[dict[str, str]]:
    return [{"source": "ingest_bucket", "transform": "day"}]


def _bucket(ms_column: str, minutes: int) -> str:
    width = minutes * 60_000
    return f"to_timestamp_ltz({ms_column} - mod({ms_column}, {width}), 3)"


def _flink_aggregate(m: Measure) -> str:
    if m.agg == "count":
        return f"count(*) as {flink_ident(m.name)}"
    if m.agg == "count_distinct":
        return f"array_agg(distinct {flink_ident(m.column)} ignore nulls) as {flink_ident(m.name + '_ids')}"  # type: ignore[operator]
    return f"{m.agg}({flink_ident(m.column)}) as {flink_ident(m.name)}"  # type: ignore[arg-type]


def speed_insert_sql(view: View, catalog: str, table: str, window_seconds: int, source: str = "counted_copies") -> str:
    """Flink SQL appending the view's partial aggregates to `table` every window_seconds of ingest time.

    `source` is a view of the copies that count (lambdalake.streaming.register_counted_copies), with
    the columns of raw.events plus event_time_ms, ingest_ms and the event-time attribute
    ingest_time. A window closes when the watermark (the slowest partition's ingest time) passes
    its end; each row is keyed by its ingest and event-time buckets, so rows from successive
    windows simply add up in the serving layer.

    The buckets are named once, in the `bucketed` step; it keeps every column of `source`, so
    ingest_time is still the time attribute the window needs.
    """
    dims = [flink_ident(d) for d in view.dimensions]
    aggs = [_flink_aggregate(m) for m in view.measures]
    filters = [f"{flink_ident(column)} in ({', '.join(_literal(v) for v in values)})" for column, values in view.where]
    return "\n".join([
        f"insert into {TableName.parse(table).flink(catalog)}",
        "with bucketed as (",
        "    select *,",
        f"        {_bucket('ingest_ms', INGEST_BUCKET_MINUTES)} as ingest_bucket,",
        f"        {_bucket('event_time_ms', view.bucket_minutes)} as event_time_bucket",
        f"    from {source}",
        ")",
        "select",
        ",\n".join(f"    {c}" for c in [*KEY_COLUMNS, *dims, *aggs]),
        f"from table(tumble(table bucketed, descriptor(ingest_time), interval '{int(window_seconds)}' second))",
        *(["where " + "\n  and ".join(filters)] if filters else []),
        "group by " + ", ".join(["window_start", "window_end", *KEY_COLUMNS, *dims]),
    ])


# --- batch layer and serving layer (Trino SQL) ------------------------------------------------

MERGE = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}
TIMESTAMP = "timestamp(6) with time zone"


def batch_columns(measure: Measure) -> tuple[str, ...]:
    """A batch table's columns of one measure: its value, and for count_distinct also its HyperLogLog
    sketch (varbinary, what serving merges with the speed layer's) and its distinct values (what
    slices and incremental runs merge exactly)."""
    if measure.agg == "count_distinct":
        return measure.name, f"{measure.name}_sketch", f"{measure.name}_ids"
    return (measure.name,)


def _trino_aggregates(m: Measure) -> list[str]:
    """The batch layer's partial aggregates of one measure, over the copies that count (batch_columns)."""
    if m.agg == "count":
        return [f"count(*) as {trino_ident(m.name)}"]
    column = trino_ident(m.column)  # type: ignore[arg-type]
    if m.agg != "count_distinct":
        return [f"{m.agg}({column}) as {trino_ident(m.name)}"]
    name, sketch, ids = (trino_ident(c) for c in batch_columns(m))
    return [f"count(distinct {column}) as {name}",
            f"cast(approx_set({column}) as varbinary) as {sketch}",
            f"coalesce(array_agg(distinct {column}) filter (where {column} is not null), "
            f"cast(array[] as array(varchar))) as {ids}"]


def _trino_bucket(column: str, minutes: int) -> str:
    seconds = minutes * 60
    return f"cast(from_unixtime(floor(to_unixtime({column}) / {seconds}) * {seconds}, 'UTC') as {TIMESTAMP})"


def trino_timestamp(moment: datetime) -> str:
    """The Trino literal of an instant, in UTC: `timestamp '2026-11-26 14:30:00 UTC'` (with
    microseconds when it has them). The one place an instant is written into SQL text."""
    if moment.tzinfo is None:
        raise ValueError(f"instant {moment!r} has no time zone; give it one (UTC)")
    utc = moment.astimezone(timezone.utc)
    return f"timestamp '{utc.strftime('%Y-%m-%d %H:%M:%S.%f' if utc.microsecond else '%Y-%m-%d %H:%M:%S')} UTC'"


def event_slice_sql(index: int, count: int) -> str:
    """Trino predicate: the event belongs to slice `index` of `count` (a hash of its event_id, so all
    copies of an event fall in one slice, and the dedup of one slice needs no other)."""
    return (f"bitwise_and(from_big_endian_64(xxhash64(to_utf8(event_id))), 9223372036854775807) % {int(count)}"
            f" = {int(index)}")


def counted_columns(view: View) -> set[str]:
    """The master dataset's columns the view's aggregate reads from the copies that count
    (view_aggregate_sql): event and ingest time, its dimensions, filters and measured columns."""
    return {"event_time", "ingest_time", *view.dimensions, *(column for column, _ in view.where),
            *(m.column for m in view.measures if m.column)}


def counted_copies_sql(catalog: str, source_table: str, source_snapshot: int, boundary: datetime,
                       horizon_seconds: int, event_slice: tuple[int, int] | None = None,
                       since: datetime | None = None, columns: list[str] | None = None) -> str:
    """Trino SQL: every copy that counts and reached Kafka before `boundary`, from one snapshot of
    the master dataset, with `columns` (all of them and `previous_copy_time`, the copy before it,
    when None). The fewer columns, the less the dedup holds in memory and the less it writes.

    The platform's one dedup rule, as the speed layer applies it (lambdalake.streaming): a copy
    counts if and only if no earlier copy of its event_id, in (ingest_time, kafka_partition,
    kafka_offset) order, was ingested at most horizon_seconds before it. The copy just before
    it is the latest earlier one, so comparing with that copy alone decides. Every earlier copy
    of a copy before B is before B too, so the boundary filter comes first. The rule does not
    depend on the view: a batch run judges the copies once for all its views (lambdalake.batch).

    `event_slice` (index, count) limits it to one hash slice of the events (event_slice_sql).
    `since` limits it to the copies that reached Kafka at or after it (an incremental run): those
    are judged against the copies of one horizon before it too, which is all the rule looks at, so
    the copies before `since` are never needed.
    """
    counts = f"previous_copy_time is null or previous_copy_time < ingest_time - interval '{int(horizon_seconds)}' second"
    if since:
        counts = f"({counts})"
    return "\n".join([
        "with events as (",
        f"    select * from {trino_table(source_table, catalog)} for version as of {int(source_snapshot)}",
        f"    where ingest_time < {trino_timestamp(boundary)}",
        *([f"      and ingest_time >= {trino_timestamp(since)} - interval '{int(horizon_seconds)}' second"]
          if since else []),
        *([f"      and {event_slice_sql(*event_slice)}"] if event_slice else []),
        "),",
        "copies as (",
        "    select *, lag(ingest_time) over (partition by event_id order by ingest_time, kafka_partition, kafka_offset)"
        " as previous_copy_time",
        "    from events",
        ")",
        "select " + ("*" if columns is None else ", ".join(trino_ident(c) for c in columns)) + " from copies",
        f"where {counts}",
        # an incremental run: only the copies from `since` on count (the earlier ones only judge them)
        *([f"  and ingest_time >= {trino_timestamp(since)}"] if since else []),
    ])


def view_aggregate_sql(view: View, counted: str, since: datetime | None = None) -> str:
    """Trino SQL: the view's partial aggregates per event-time bucket over `counted`, a relation of
    copies that count (counted_copies_sql's columns); `since` keeps those that reached Kafka from it on."""
    bucket = _trino_bucket("event_time", view.bucket_minutes)
    dims = [trino_ident(d) for d in view.dimensions]
    aggs = [aggregate for m in view.measures for aggregate in _trino_aggregates(m)]
    filters = [f"{trino_ident(c)} in ({', '.join(_literal(v) for v in values)})" for c, values in view.where]
    if since:
        filters.append(f"ingest_time >= {trino_timestamp(since)}")
    return "\n".join([
        "with bucketed as (",
        f"    select *, {bucket} as event_time_bucket",
        f"    from {counted}",
        ")",
        "select",
        ",\n".join(f"    {c}" for c in ["event_time_bucket", *dims, *aggs]),
        "from bucketed",
        *(["where " + "\n  and ".join(filters)] if filters else []),
        "group by " + ", ".join(["event_time_bucket", *dims]),
    ])


def batch_from_counted_sql(view: View, catalog: str, counted_table: str, counted_snapshot: int,
                           since: datetime | None = None) -> str:
    """Trino SQL: the view below B from a table of the copies that count, as a batch run wrote them
    once for all its views (counted_copies_sql), read at the snapshot that run recorded."""
    return view_aggregate_sql(view, f"{trino_table(counted_table, catalog)} for version as of {int(counted_snapshot)}",
                              since)


def batch_select_sql(view: View, catalog: str, source_table: str, source_snapshot: int, boundary: datetime,
                     horizon_seconds: int, event_slice: tuple[int, int] | None = None,
                     since: datetime | None = None) -> str:
    """Trino SQL: the view over every copy that counts and reached Kafka before `boundary`, in one
    statement: counted_copies_sql, then the view's aggregate over it (view_aggregate_sql).
    Arguments as counted_copies_sql's."""
    counted = counted_copies_sql(catalog, source_table, source_snapshot, boundary, horizon_seconds, event_slice, since)
    indented = "\n".join(f"    {line}" for line in counted.splitlines())
    aggregate = view_aggregate_sql(view, "counted_copies")
    return f"with counted_copies as (\n{indented}\n),\n" + aggregate.removeprefix("with ")


def _merged_sketch(m: Measure) -> str:
    sketch = trino_ident(f"{m.name}_sketch")
    return f"merge(cast({sketch} as HyperLogLog))"


def _merged_measures(view: View) -> list[str]:
    """Each measure re-aggregated over batch rows of partial aggregates (counts and sums add up;
    distinct values are united, so the distinct count stays exact)."""
    merged = []
    for m in view.measures:
        if m.agg != "count_distinct":
            merged.append(f"{MERGE[m.agg]}({trino_ident(m.name)}) as {trino_ident(m.name)}")
            continue
        name, sketch, ids = (trino_ident(c) for c in batch_columns(m))
        united = f"array_distinct(flatten(array_agg({ids})))"
        merged += [f"cardinality({united}) as {name}",
                   f"cast({_merged_sketch(m)} as varbinary) as {sketch}",
                   f"{united} as {ids}"]
    return merged


def _served_measures(view: View) -> list[str]:
    """Each measure re-aggregated over serving's parts: as in batch, except count_distinct, which
    is exact where batch alone answers (one batch row per key) and otherwise the cardinality of
    the merged sketches; `<m>_is_exact` says which, `<m>_sketch` is what rolling up merges."""
    served = []
    for m in view.measures:
        if m.agg != "count_distinct":
            served.append(f"{MERGE[m.agg]}({trino_ident(m.name)}) as {trino_ident(m.name)}")
            continue
        name, sketch = trino_ident(m.name), trino_ident(f"{m.name}_sketch")
        exact = f"bool_and({name} is not null)"
        served += [f"if({exact}, sum({name}), coalesce(cardinality({_merged_sketch(m)}), 0)) as {name}",
                   f"{exact} as {trino_ident(m.name + '_is_exact')}",
                   f"cast({_merged_sketch(m)} as varbinary) as {sketch}"]
    return served


def merge_slices_sql(view: View, catalog: str, slices_table: str) -> str:
    """Trino SQL: the batch rows of every slice in `slices_table`, merged into one row per bucket."""
    dims = [trino_ident(d) for d in view.dimensions]
    merged = _merged_measures(view)
    return "\n".join([
        "select " + ", ".join(["event_time_bucket", *dims, *merged]),
        f"from {trino_table(slices_table, catalog)}",
        "group by " + ", ".join(["event_time_bucket", *dims]),
    ])


def incremental_merge_sql(view: View, catalog: str, previous_table: str, delta_table: str) -> str:
    """Trino SQL: the previous batch table with the delta's partial aggregates added, one row per key.

    Event-time buckets the delta does not touch are carried over as they are; only the touched
    ones are re-aggregated, so the work grows with the delta, not with the table.
    """
    dims = [trino_ident(d) for d in view.dimensions]
    stored = [trino_ident(c) for m in view.measures for c in batch_columns(m)]
    columns = ", ".join(["event_time_bucket", *dims, *stored])
    previous, delta = trino_table(previous_table, catalog), trino_table(delta_table, catalog)
    touched = f"(select distinct event_time_bucket from {delta})"
    return "\n".join([
        f"select {columns} from {previous}",
        f"where event_time_bucket not in {touched}",
        "union all",
        "select " + ", ".join(["event_time_bucket", *dims, *_merged_measures(view)]),
        "from (",
        f"    select {columns} from {previous} where event_time_bucket in {touched}",
        "    union all",
        f"    select {columns} from {delta}",
        ")",
        "group by " + ", ".join(["event_time_bucket", *dims]),
    ])


def _part_columns(view: View, layer: str) -> str:
    """The columns serving reads from one layer's part: buckets, dimensions and partial measures.
    A count_distinct measure's batch part is its exact count and sketch; its speed part has no
    exact count (null) and the sketch of each row's distinct values."""
    columns = ["event_time_bucket", *(trino_ident(d) for d in view.dimensions)]
    for m in view.measures:
        if m.agg != "count_distinct":
            columns.append(trino_ident(m.name))
        elif layer == "batch":
            columns += [trino_ident(m.name), trino_ident(f"{m.name}_sketch")]
        else:
            columns += [f"cast(null as bigint) as {trino_ident(m.name)}",
                        f"(select cast(approx_set(distinct_value) as varbinary) from unnest("
                        f"{trino_ident(m.name + '_ids')}) as distinct_values(distinct_value))"
                        f" as {trino_ident(m.name + '_sketch')}"]
    return ", ".join(columns)


def _serving_parts(view: View, catalog: str, speed_table: str, batch_table: str | None, boundary: datetime | None,
                   columns: dict[str, str] | None = None, as_of: datetime | None = None,
                   empty: frozenset[str] = frozenset(), until: datetime | None = None) -> list[tuple[str, str]]:
    """(layer, select of its columns: `columns[layer]`, default _part_columns) for each part
    serving.<view> reads: the batch rows, and the speed rows at or after the boundary (speed
    alone before the first batch run), and before `until` if given."""

    def select(layer: str) -> str:
        return (columns or {}).get(layer) or _part_columns(view, layer)

    def source(table: str) -> str:
        if as_of is None:
            return trino_table(table, catalog)
        as_of_clause = "" if table in empty else f" for timestamp as of {trino_timestamp(as_of)}"
        return trino_table(table, catalog) + as_of_clause

    def unless_empty(table: str, where: str | None = None) -> str:
        conditions = [*([where] if where else []), *(["false"] if table in empty else [])]
        return f" where {' and '.join(conditions)}" if conditions else ""

    speed_rows = " and ".join([*([f"ingest_bucket >= {trino_timestamp(boundary)}"] if batch_table else []),
                               *([f"ingest_bucket < {trino_timestamp(until)}"] if until else [])]) or None
    speed = ("speed", f"select {select('speed')} from {source(speed_table)}{unless_empty(speed_table, speed_rows)}")
    if batch_table is None:
        return [speed]
    return [("batch", f"select {select('batch')} from {source(batch_table)}{unless_empty(batch_table)}"), speed]


def serving_select_sql(view: View, catalog: str, speed_table: str, batch_table: str | None,
                       boundary: datetime | None, as_of: datetime | None = None,
                       empty: frozenset[str] = frozenset(), until: datetime | None = None) -> str:
    """Trino SQL: batch rows, plus speed rows at or after the boundary, re-aggregated (speed alone
    before the first batch run, batch_table None).

    `as_of` reads every table as it was at that instant; a table in
    `empty` had no snapshot yet then, and contributes no rows. `until` leaves out the speed rows
    from it on (what serving answered for the copies before it).
    """
    dims = [trino_ident(d) for d in view.dimensions]
    parts = _serving_parts(view, catalog, speed_table, batch_table, boundary, as_of=as_of, empty=empty, until=until)
    return "\n".join([
        "with parts as (",
        "\n    union all\n".join(f"    {select}" for _, select in parts),
        ")",
        "select " + ", ".join(["event_time_bucket", *dims, *_served_measures(view)]),
        "from parts",
        "group by " + ", ".join(["event_time_bucket", *dims]),
    ])


def serving_split_sql(view: View, catalog: str, speed_table: str, batch_table: str | None,
                      boundary: datetime | None) -> str:
    """Trino SQL: how much of serving.<view>'s answer each layer gives, as rows (layer, amount):
    the sum of the view's first count or sum measure over that layer's part, else (min and max
    do not add up) its rows."""
    additive = next((m for m in view.measures if m.agg in ("count", "sum")), None)
    amount = f"coalesce(sum({trino_ident(additive.name)}), 0)" if additive else "count(*)"
    parts = _serving_parts(view, catalog, speed_table, batch_table, boundary, {"batch": "*", "speed": "*"})
    return "\nunion all\n".join(f"select '{layer}' as layer, {amount} as amount from ({select})"
                                 for layer, select in parts)


def serving_view_sql(view: View, catalog: str, serving_table: str, speed_table: str, batch_table: str | None,
                     boundary: datetime | None) -> str:
    """Trino SQL for serving.<view>: serving_select_sql as a view.

    The boundary is a literal in the view, so replacing the view moves batch table and boundary in one step.
    """
    return (f"create or replace view {trino_table(serving_table, catalog)} as\n"
            + serving_select_sql(view, catalog, speed_table, batch_table, boundary))


def accuracy_sql(view: View, catalog: str, speed_table: str, previous_batch: str | None,
                 previous_boundary: datetime | None, batch_table: str, boundary: datetime) -> str:
    """Trino SQL: for each bucket (event-time bucket and dimensions) the speed layer answered
    between the previous boundary and this one, and each measure, what serving answered for the
    copies before `boundary` before this batch run (the previous batch table plus those speed
    rows), and what the new batch table answers: rows of (event_time_bucket, dimensions as a JSON
    object, measure, speed_answer, batch_answer).

    The buckets are the ones the speed rows of that interval name, and the new batch table's rows
    in the same event-time buckets (so a key the speed layer missed is there too, with no speed
    answer; it counts as 0 for counts and sums)."""
    dims = [trino_ident(d) for d in view.dimensions]
    speed = trino_table(speed_table, catalog)
    interval = " and ".join([*([f"ingest_bucket >= {trino_timestamp(previous_boundary)}"] if previous_boundary else []),
                             f"ingest_bucket < {trino_timestamp(boundary)}"])
    before = serving_select_sql(view, catalog, speed_table, previous_batch, previous_boundary, until=boundary)
    keys = ", ".join(["event_time_bucket", *dims])

    def same_key(side: str) -> str:
        return " and ".join(f"{side}.{c} is not distinct from k.{c}" for c in ["event_time_bucket", *dims])

    json_dims = (f"json_format(cast(map(array[{', '.join(_literal(d) for d in view.dimensions)}], "
                 f"array[{', '.join(f'cast(k.{d} as varchar)' for d in dims)}]) as json))" if dims else "'{}'")
    zero = {m.name: m.agg in ("count", "sum", "count_distinct") for m in view.measures}

    def answer(side: str, m: Measure) -> str:
        value = f"cast({side}.{trino_ident(m.name)} as double)"
        return f"coalesce({value}, 0)" if zero[m.name] else value

    return "\n".join([
        f"with before as ({before}),",
        f"touched as (select distinct {keys} from {speed} where {interval}),",
        f"keys as (select {keys} from touched union select {keys} from {trino_table(batch_table, catalog)}",
        "          where event_time_bucket in (select event_time_bucket from touched))",
        f"select k.event_time_bucket, {json_dims} as dimensions, m.measure, m.speed_answer, m.batch_answer",
        "from keys k",
        f"left join before s on {same_key('s')}",
        f"left join {trino_table(batch_table, catalog)} b on {same_key('b')}",
        "cross join unnest(array[" + ", ".join(_literal(m.name) for m in view.measures) + "], array["
        + ", ".join(answer("s", m) for m in view.measures) + "], array["
        + ", ".join(answer("b", m) for m in view.measures) + "]) as m(measure, speed_answer, batch_answer)",
    ])
