"""A DB-API query result as a stream of Arrow record batches with one fixed, explained schema.

Used by :class:`~airflow_provider_spotfire.transfers.sql_to_spotfire.SqlToSpotfireOperator`; it has
no Airflow imports, so it works with any DB-API 2.0 cursor (PEP 249).

Where a driver offers Arrow natively, its batches are used as they come: ``fetch_record_batch``
(ADBC drivers, DuckDB) or ``fetch_arrow_batches`` (Snowflake). Otherwise rows are fetched with
``fetchmany`` and each column's Arrow type is decided once, from the cursor description where the
driver's type codes say enough (PostgreSQL's type OIDs, the DB-API type objects), else from the
values of the first rows (SQLite reports no types). The decision is kept for the whole result, so
every batch has the same schema, and :attr:`SqlBatchReader.mapping` says what was mapped and why.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from airflow_provider_spotfire.exceptions import SpotfireDataError

DEFAULT_BATCH_ROWS = 50_000
# SBDF Decimal holds a .NET decimal: at most 28 significant digits.
MAX_DECIMAL_PRECISION = 28

# PostgreSQL type OIDs (pg_type.oid) as reported by psycopg2 / psycopg in cursor.description.
_PG_TYPES: dict[int, tuple[str, pa.DataType | None]] = {
    16: ("boolean", pa.bool_()),
    17: ("bytea", pa.binary()),
    18: ("char", pa.string()),
    19: ("name", pa.string()),
    20: ("bigint", pa.int64()),
    21: ("smallint", pa.int32()),
    23: ("integer", pa.int32()),
    25: ("text", pa.string()),
    26: ("oid", pa.int64()),
    114: ("json", pa.string()),
    700: ("real", pa.float32()),
    701: ("double precision", pa.float64()),
    1042: ("character", pa.string()),
    1043: ("character varying", pa.string()),
    1082: ("date", pa.date32()),
    1083: ("time", pa.time64("us")),
    1114: ("timestamp", pa.timestamp("us")),
    1184: ("timestamp with time zone", pa.timestamp("us", tz="UTC")),
    1186: ("interval", pa.duration("us")),
    1700: ("numeric", None),  # decided from precision and scale
    2950: ("uuid", pa.string()),
    3802: ("jsonb", pa.string()),
}
_PG_MODULES = ("psycopg2", "psycopg")


@dataclass(frozen=True)
class ColumnMapping:
    """How one result column was mapped: its source type, the Arrow type and why."""

    name: str
    source_type: str
    arrow_type: pa.DataType
    reason: str

    def describe(self) -> str:
        return f"{self.name}: {self.source_type} -> {self.arrow_type} ({self.reason})"


def _driver_module(cursor: Any) -> str:
    return type(cursor).__module__.split(".")[0]


def _pg_column(name: str, desc: Sequence[Any]) -> ColumnMapping | None:
    code = desc[1]
    if not isinstance(code, int) or code not in _PG_TYPES:
        return None
    type_name, arrow_type = _PG_TYPES[code]
    if arrow_type is not None:
        return ColumnMapping(name, type_name, arrow_type, "PostgreSQL type")
    precision, scale = _precision_scale(desc)
    if precision is not None and scale is not None and 0 < precision <= MAX_DECIMAL_PRECISION:
        return ColumnMapping(
            name, f"numeric({precision},{scale})", pa.decimal128(precision, scale), "exact decimal"
        )
    return ColumnMapping(
        name,
        "numeric" if precision is None else f"numeric({precision},{scale})",
        pa.float64(),
        f"no precision of at most {MAX_DECIMAL_PRECISION} digits declared: Real (double), about 15 "
        "significant digits; CAST to numeric(p,s) with p <= 28 to keep it exact",
    )


def _precision_scale(desc: Sequence[Any]) -> tuple[int | None, int | None]:
    precision = desc[4] if len(desc) > 4 else None
    scale = desc[5] if len(desc) > 5 else None
    if not isinstance(precision, int) or precision <= 0:
        return None, None
    return precision, scale if isinstance(scale, int) and scale >= 0 else 0


def _described_column(name: str, desc: Sequence[Any], module: str) -> ColumnMapping | None:
    """The mapping the cursor description alone determines, or None (decide from the values)."""
    if module in _PG_MODULES:
        return _pg_column(name, desc)
    return None


def _value_type(values: Sequence[Any]) -> tuple[pa.DataType, str] | None:
    """(Arrow type, Python type names) of the non-null ``values``; None when all are null."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return None
    names = ", ".join(sorted(k.__name__ for k in kinds))

    def only(*types: type) -> bool:
        return all(issubclass(k, types) for k in kinds)

    if only(bool):
        return pa.bool_(), names
    if not any(issubclass(k, bool) for k in kinds):
        if only(int):
            return pa.int64(), names
        if only(int, float):
            return pa.float64(), names
        if only(int, decimal.Decimal):
            return pa.float64(), names
    if only(str):
        return pa.string(), names
    if only(bytes, bytearray, memoryview):
        return pa.binary(), names
    if only(dt.datetime):
        aware = any(v.tzinfo is not None for v in values if v is not None)
        return (pa.timestamp("us", tz="UTC") if aware else pa.timestamp("us")), names
    if only(dt.date) and not any(issubclass(k, dt.datetime) for k in kinds):
        return pa.date32(), names
    if only(dt.time):
        return pa.time64("us"), names
    if only(dt.timedelta):
        return pa.duration("us"), names
    raise TypeError(names)


def _inferred_column(name: str, values: Sequence[Any], enough: bool) -> ColumnMapping | None:
    try:
        found = _value_type(values)
    except TypeError as exc:
        raise SpotfireDataError(
            f"Column {name!r} of the query result holds values of different kinds ({exc}); SBDF columns "
            "have one type. CAST the column to one type in the SQL."
        ) from None
    if found is None:
        if not enough:
            return None
        return ColumnMapping(name, "unknown", pa.string(), "only NULLs in the rows inspected: String")
    arrow_type, names = found
    reason = f"inferred from the values ({names})"
    if arrow_type == pa.float64() and "Decimal" in names:
        reason += ": Real (double), about 15 significant digits; CAST to a float to say so"
    return ColumnMapping(name, "untyped", arrow_type, reason)


class SqlBatchReader:
    """Iterates a query's result as ``pyarrow.RecordBatch`` es of at most ``batch_rows`` rows.

    :param cursor: a DB-API cursor on which the query has been executed.
    :param batch_rows: rows per ``fetchmany`` (and per batch).
    :param inference_rows: rows looked at, at most, to decide the type of a column the driver does
        not describe; a column that is NULL in all of them becomes String.
    """

    def __init__(
        self, cursor: Any, *, batch_rows: int = DEFAULT_BATCH_ROWS, inference_rows: int = 10_000
    ) -> None:
        self.cursor = cursor
        self.batch_rows = batch_rows
        self.inference_rows = max(inference_rows, 1)
        self.mapping: list[ColumnMapping] = []
        self.rows = 0
        self.batches = 0

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(m.name, m.arrow_type) for m in self.mapping])

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        native = _native_batches(self.cursor, self.batch_rows)
        source = native if native is not None else self._row_batches()
        for batch in source:
            if not self.mapping:
                self.mapping = [
                    ColumnMapping(f.name, "arrow", f.type, "the driver's own Arrow type")
                    for f in batch.schema
                ]
            self.rows += batch.num_rows
            self.batches += 1
            yield batch

    # ---- rows (fetchmany) ------------------------------------------------------------------
    def _row_batches(self) -> Iterator[pa.RecordBatch]:
        pending: list[Sequence[Any]] = []
        exhausted = False
        while not self.mapping:  # buffer rows until every column's type is decided
            rows = self.cursor.fetchmany(self.batch_rows)
            exhausted = not rows
            pending.extend(rows)
            self._decide(pending, exhausted=exhausted)
        yield from self._convert_all(pending)
        while not exhausted:
            rows = self.cursor.fetchmany(self.batch_rows)
            if not rows:
                return
            yield self._convert(rows)

    def _convert_all(self, rows: list[Sequence[Any]]) -> Iterator[pa.RecordBatch]:
        for start in range(0, len(rows), self.batch_rows):
            yield self._convert(rows[start : start + self.batch_rows])
        if not rows:
            yield self._convert([])

    def _names(self) -> list[str]:
        description = self.cursor.description
        if not description:
            raise SpotfireDataError(
                "The SQL statement returned no result set (cursor.description is empty); give a query "
                "that returns rows, e.g. a SELECT."
            )
        names = [str(d[0]) for d in description]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SpotfireDataError(
                f"The query result has duplicate column names {duplicates}; SBDF column names must be "
                "unique. Give the columns distinct aliases (SELECT a.id AS a_id, b.id AS b_id ...)."
            )
        return names

    def _decide(self, rows: list[Sequence[Any]], *, exhausted: bool) -> None:
        """Fix the schema from the description and ``rows``; leaves it unset while a column is open."""
        names = self._names()
        module = _driver_module(self.cursor)
        enough = exhausted or len(rows) >= self.inference_rows
        decided: list[ColumnMapping] = []
        for i, (name, desc) in enumerate(zip(names, self.cursor.description, strict=True)):
            column = _described_column(name, desc, module) or _inferred_column(
                name, [r[i] for r in rows], enough
            )
            if column is None:
                return
            decided.append(column)
        self.mapping = decided

    def _convert(self, rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in self.mapping]
        arrays = []
        for column, values in zip(self.mapping, columns, strict=True):
            try:
                arrays.append(pa.array(_adapt(values, column.arrow_type), type=column.arrow_type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                raise SpotfireDataError(
                    f"Column {column.name!r}, result batch {self.batches + 1}: a value does not fit the "
                    f"column's type {column.arrow_type} ({column.reason}): {exc}. CAST the column to one "
                    "type in the SQL."
                ) from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _adapt(values: Sequence[Any], arrow_type: pa.DataType) -> Sequence[Any]:
    """Values as pyarrow accepts them for ``arrow_type`` (buffers as bytes, aware datetimes in UTC)."""
    if pa.types.is_string(arrow_type):
        return [v if v is None or isinstance(v, str) else _as_text(v) for v in values]
    if pa.types.is_binary(arrow_type):
        return [bytes(v) if isinstance(v, memoryview | bytearray) else v for v in values]
    if pa.types.is_floating(arrow_type):
        return [float(v) if isinstance(v, decimal.Decimal) else v for v in values]
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
        return [_as_utc(v) for v in values]
    return values


def _as_text(value: Any) -> str:
    """JSON documents (drivers parse json/jsonb to dicts and lists) as JSON text; UUIDs etc. as str."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _as_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    return value


def _native_batches(cursor: Any, batch_rows: int) -> Iterator[pa.RecordBatch] | None:
    """The driver's own Arrow batches (ADBC / DuckDB / Snowflake cursors), else None."""
    if callable(getattr(cursor, "fetch_record_batch", None)):
        reader = cursor.fetch_record_batch(batch_rows)
        return iter(reader)
    if callable(getattr(cursor, "fetch_arrow_batches", None)):
        return (b for table in cursor.fetch_arrow_batches() for b in table.to_batches())
    return None


__all__ = ["DEFAULT_BATCH_ROWS", "ColumnMapping", "SqlBatchReader"]
