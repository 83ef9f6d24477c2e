"""Streaming SBDF writer: a table source → the bytes of one SBDF file, one table slice at a time.

The first batch fixes the schema (column names, order and SBDF types) and produces the file
header and the table metadata; every batch then becomes table slices of bounded rows and bytes;
the end-of-table marker closes the file. Memory is bounded by one batch plus one slice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.extensions import ExtensionDtype

from airflow_provider_spotfire._sbdf_file import is_table_source
from airflow_provider_spotfire.exceptions import SbdfSchemaError, SpotfireDataError
from airflow_provider_spotfire.sbdf import _format as fmt
from airflow_provider_spotfire.sbdf._arrow import arrow_column
from airflow_provider_spotfire.sbdf._columns import ColumnData, column_data
from airflow_provider_spotfire.sbdf._normalise import _Normaliser, _prepare, _resolve_tz, column_labels

#: Upper bound of the String/Binary bytes of one table slice (rows are cut to stay below it).
DEFAULT_SLICE_BYTES = 32 * 1024 * 1024

_SOURCE_KINDS = (
    "a pandas DataFrame, an iterable of DataFrames, a pyarrow Table, a pyarrow RecordBatchReader, "
    "an iterable of pyarrow RecordBatches or a polars DataFrame"
)
_ARROW_HINTS = {"String": pa.large_string(), "Binary": pa.large_binary()}


def default_slice_rows(columns: int) -> int:
    """Rows per table slice when none is given: the same rule as ``spotfire.sbdf.export_data``."""
    return max(10, 100_000 // max(1, columns))


class SbdfByteStream(Iterator[bytes]):
    """The bytes of one SBDF file written from a table source, as an iterator of pieces.

    ``source`` is a pandas DataFrame, an iterable of DataFrames, a ``pyarrow.Table``, a
    ``pyarrow.RecordBatchReader``, an iterable of ``pyarrow.RecordBatch`` or a polars DataFrame.
    Pieces are: file header + table metadata, then one table slice each, then the end marker.
    After (or during) iteration ``rows``, ``bytes``, ``batches``, ``notes`` and ``column_types``
    describe what was written. Arguments are checked when the stream is created; data errors
    (:class:`SpotfireDataError`, :class:`SbdfSchemaError` for a schema change) surface while iterating.
    """

    def __init__(
        self,
        source: Any,
        *,
        time_zone: str | dt.tzinfo = "UTC",
        keep_index: bool = False,
        slice_rows: int | None = None,
        slice_bytes: int = DEFAULT_SLICE_BYTES,
        table_metadata: Mapping[str, Any] | None = None,
        column_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not is_table_source(source):
            raise TypeError(f"expected {_SOURCE_KINDS}, got {type(source).__name__}")
        for name, value in (("slice_rows", slice_rows), ("slice_bytes", slice_bytes)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise SpotfireDataError(f"{name} must be a positive integer, got {value!r}")
        _resolve_tz(time_zone)  # unknown zones fail here, before anything is read
        self._table_metadata = dict(table_metadata or {})
        self._column_metadata = {k: dict(v) for k, v in (column_metadata or {}).items()}
        fmt.table_metadata_section(self._table_metadata, [], {})  # bad table metadata fails now
        self._time_zone = time_zone
        self._keep_index = keep_index
        self._slice_rows = slice_rows
        self._slice_bytes = slice_bytes
        self.rows = 0
        self.bytes = 0
        self.batches = 0
        self.notes: list[str] = []
        self.column_types: dict[str, str] = {}
        self._pieces = self._generate(source)

    def __iter__(self) -> SbdfByteStream:
        return self

    def __next__(self) -> bytes:
        piece = next(self._pieces)
        self.bytes += len(piece)
        return piece

    def close(self) -> None:
        """Stop early (the source's generator, if any, is closed too)."""
        self._pieces.close()

    # ---- generation ----------------------------------------------------------------------------
    def _generate(self, source: Any) -> Generator[bytes, None, None]:
        schema: list[tuple[str, str]] | None = None
        held: tuple[int, Any] | None = None  # a zero-row batch met before the schema was fixed
        for number, batch in enumerate(_batches(source), start=1):
            if schema is None and _row_count(batch) == 0:
                # Zero rows say little about types (an empty object column): the first batch with
                # rows fixes the schema; the empty one is used only if no batch has rows.
                held = held or (number, batch)
                continue
            schema = yield from self._batch(number, batch, schema)
        if schema is None and held is not None:
            schema = yield from self._batch(*held, None)
        if schema is None:
            raise SpotfireDataError(
                "the source produced no batches, so the table's columns are unknown; "
                "yield at least one (possibly empty) DataFrame or RecordBatch"
            )
        yield fmt.TABLE_END

    def _batch(
        self, number: int, batch: Any, schema: list[tuple[str, str]] | None
    ) -> Generator[bytes, None, list[tuple[str, str]]]:
        """Yield the header (first batch) and the slices of one batch; return the schema."""
        names, columns = self._columns(batch, number, schema)
        types = [c.type_name for c in columns]
        if schema is None:
            schema = list(zip(names, types, strict=True))
            self.column_types = dict(schema)
            fmt.check_column_metadata(names, self._column_metadata)
            yield fmt.FILE_HEADER + fmt.table_metadata_section(
                self._table_metadata, schema, self._column_metadata
            )
        else:
            _check_schema(schema, names, types, number)
        self.batches += 1
        rows = len(columns[0])
        yield from self._slices(columns, rows)
        self.rows += rows
        return schema

    def _columns(
        self, batch: Any, number: int, schema: list[tuple[str, str]] | None
    ) -> tuple[list[str], list[ColumnData]]:
        known = dict(schema) if schema else None
        if isinstance(batch, pd.DataFrame):
            prepared = _prepare(
                batch,
                timezone=self._time_zone,
                keep_index=self._keep_index,
                arrow_strings=True,
                known_types=known,
            )
            self._add_notes(prepared.notes)
            names = list(prepared.column_types)
            frame = prepared.frame
            columns = [
                column_data(name, _pandas_to_arrow(name, frame.iloc[:, i], prepared.column_types[name]), t)
                for i, (name, t) in enumerate(prepared.column_types.items())
            ]
            return names, columns
        if isinstance(batch, pa.RecordBatch):
            return self._arrow_columns(batch, known)
        raise SpotfireDataError(
            f"batch {number} of the source is a {type(batch).__name__}; every batch must be a pandas "
            "DataFrame or a pyarrow RecordBatch (one kind per source)"
        )

    def _arrow_columns(
        self, batch: pa.RecordBatch, known: dict[str, str] | None
    ) -> tuple[list[str], list[ColumnData]]:
        normaliser = _Normaliser(self._time_zone)
        names = column_labels(list(batch.schema.names), normaliser.notes)
        if not names:
            raise SpotfireDataError("the table has no columns; SBDF needs at least one column")
        columns = []
        for name, arr in zip(names, batch.columns, strict=True):
            arr2, sbdf_type = arrow_column(normaliser, name, arr, (known or {}).get(name))
            columns.append(column_data(name, arr2, sbdf_type))
        self._add_notes(normaliser.notes)
        return names, columns

    def _add_notes(self, notes: list[str]) -> None:
        for note in notes:
            if note not in self.notes:
                self.notes.append(note)

    def _slices(self, columns: list[ColumnData], rows: int) -> Iterator[bytes]:
        slice_rows = self._slice_rows or default_slice_rows(len(columns))
        head = fmt.TABLE_SLICE + fmt.int32(len(columns))
        for start, stop in slice_bounds(columns, rows, slice_rows, self._slice_bytes):
            pieces: list[Any] = [head]
            for column in columns:
                pieces += column.encode(start, stop)
            yield b"".join(pieces)


#: ``iter_sbdf_bytes(source, *, time_zone="UTC", keep_index=False, slice_rows=None, ...)``: write
#: ``source`` as SBDF and get the file's bytes as an iterator of pieces (an :class:`SbdfByteStream`).
iter_sbdf_bytes = SbdfByteStream


# --------------------------------------------------------------------------------------------------


def _batches(source: Any) -> Iterator[Any]:
    """The source's batches: pandas DataFrames or pyarrow RecordBatches (at least one for sources
    that carry a schema, so an empty table still has its columns)."""
    if isinstance(source, pd.DataFrame | pa.RecordBatch):
        yield source
        return
    module = type(source).__module__.split(".")[0]
    if module == "polars":
        source = source.to_arrow()
    if isinstance(source, pa.Table):
        source = pa.RecordBatchReader.from_batches(source.schema, source.to_batches())
    if isinstance(source, pa.RecordBatchReader):
        empty = True
        for batch in source:
            empty = False
            yield batch
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=source.schema)
        return
    yield from _iterable_batches(source)


def _iterable_batches(source: Iterable[Any]) -> Iterator[Any]:
    for item in source:
        if isinstance(item, pa.Table):
            yield from item.to_batches() or [pa.RecordBatch.from_pylist([], schema=item.schema)]
        else:
            yield item


def _row_count(batch: Any) -> int | None:
    if isinstance(batch, pd.DataFrame | pa.RecordBatch):
        return len(batch)
    return None  # not a batch: _columns explains


def _check_schema(schema: list[tuple[str, str]], names: list[str], types: list[str], number: int) -> None:
    expected = [n for n, _ in schema]
    fix = (
        "give every batch the same columns in the same order with the same types "
        "(what was written is incomplete: an upload is cancelled)"
    )
    if names != expected:
        pos = next((i for i, (a, b) in enumerate(zip(names, expected, strict=False)) if a != b), None)
        if pos is None:  # one is a prefix of the other
            pos = min(len(names), len(expected))
        got = repr(names[pos]) if pos < len(names) else "nothing"
        want = repr(expected[pos]) if pos < len(expected) else "no more columns"
        column = names[pos] if pos < len(names) else expected[pos]
        raise SbdfSchemaError(
            f"batch {number}: column {column!r} breaks the schema: at position {pos} it has {got}, "
            f"the first batch had {want} (first batch's columns: {', '.join(map(repr, expected))}); {fix}",
            column=column,
            batch=number,
        )
    for (name, want_type), got_type in zip(schema, types, strict=True):
        if got_type != want_type:
            raise SbdfSchemaError(
                f"batch {number}: column {name!r} is SBDF {got_type} but the first batch made it "
                f"SBDF {want_type}; cast it in every batch (e.g. to the first batch's dtype); {fix}",
                column=name,
                batch=number,
            )


def slice_bounds(
    columns: list[ColumnData], rows: int, slice_rows: int, slice_bytes: int
) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges of at most ``slice_rows`` rows and, where String/Binary values
    allow, at most ``slice_bytes`` bytes of them (a single larger row is a slice of its own)."""
    variable = [c.offsets for c in columns if c.offsets is not None]
    if not variable:
        for start in range(0, rows, slice_rows):
            yield start, min(rows, start + slice_rows)
        return
    cum = variable[0] if len(variable) == 1 else np.sum(variable, axis=0)
    start = 0
    while start < rows:
        stop = min(rows, start + slice_rows)
        limit = int(cum[start]) + slice_bytes
        if int(cum[stop]) > limit:
            stop = max(start + 1, int(np.searchsorted(cum, limit, side="right")) - 1)
        yield start, stop
        start = stop


def _pandas_to_arrow(name: str, series: pd.Series, sbdf_type: str) -> pa.Array | pa.ChunkedArray:
    """A normalised pandas column as Arrow (numbers without copies; strings in Arrow's C loop)."""
    values = series.array if isinstance(series.dtype, ExtensionDtype) else series.to_numpy()
    textual = series.dtype == object or isinstance(series.dtype, pd.StringDtype)
    hint = _ARROW_HINTS.get(sbdf_type) if textual else None
    try:
        return pa.array(values, type=hint, from_pandas=True)
    except (pa.ArrowException, UnicodeError, OverflowError, TypeError, ValueError) as exc:
        raise SpotfireDataError(
            f"column {name!r} cannot be written as SBDF {sbdf_type}: {exc}; convert it, "
            f"e.g. df[{name!r}] = df[{name!r}].astype('string')"
        ) from exc
