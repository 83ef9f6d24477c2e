"""Normalisation of Arrow columns: the same rules as for pandas (see ``_normalise``), on Arrow types.

Each column gets its SBDF type; columns whose Arrow type SBDF cannot hold directly are cast
(with a note), time-zone-aware timestamps are converted to the requested zone, and data SBDF
cannot hold raises :class:`SpotfireDataError` naming the column and the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from airflow_provider_spotfire.exceptions import SpotfireDataError
from airflow_provider_spotfire.sbdf._normalise import _Normaliser

_I64_MAX = int(np.iinfo(np.int64).max)
_SUB_MS = {"us": 1_000, "ns": 1_000_000}


def arrow_column(
    normaliser: _Normaliser, col: str, arr: pa.Array | pa.ChunkedArray, known_type: str | None
) -> tuple[pa.Array, str]:
    """(array to write, SBDF type) for one Arrow column; notes go to ``normaliser.notes``."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        normaliser.note(col, f"{t} → {arr.type} (the dictionary's values are written)")
        t = arr.type
    if pa.types.is_null(t):
        if known_type:
            return arr, known_type
        raise SpotfireDataError(
            f"column {col!r} has Arrow type null (only missing values), so its SBDF type cannot be "
            f"determined; cast it, e.g. table.cast(...) with pa.string() for column {col!r}"
        )
    if pa.types.is_integer(t):
        return _integer(normaliser, col, arr)
    if pa.types.is_floating(t):
        if t.bit_width == 16:
            normaliser.note(col, "halffloat → float (SBDF SingleReal)")
            return arr.cast(pa.float32()), "SingleReal"
        return arr, ("SingleReal" if t.bit_width == 32 else "Real")
    simple = _simple_type(t)
    if simple:
        return arr, simple
    if pa.types.is_timestamp(t):
        return _timestamp(normaliser, col, arr)
    if pa.types.is_time(t) or pa.types.is_duration(t):
        _sub_ms_note(normaliser, col, arr, "truncated" if pa.types.is_time(t) else "floored")
        return arr, ("Time" if pa.types.is_time(t) else "TimeSpan")
    raise SpotfireDataError(
        f"column {col!r} has Arrow type {t}, which SBDF cannot store; "
        f"convert it, e.g. pyarrow.compute.cast(table[{col!r}], pa.string())"
    )


def _simple_type(t: pa.DataType) -> str | None:
    if pa.types.is_boolean(t):
        return "Boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is(t, "is_string_view"):
        return "String"
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or _is(t, "is_binary_view")
    ):
        return "Binary"
    if pa.types.is_date(t):
        return "Date"
    if pa.types.is_decimal(t):
        return "Currency"
    return None


def _is(t: pa.DataType, check: str) -> bool:
    fn = getattr(pa.types, check, None)
    return bool(fn and fn(t))


def _integer(normaliser: _Normaliser, col: str, arr: pa.Array) -> tuple[pa.Array, str]:
    t = arr.type
    signed = pa.types.is_signed_integer(t)
    if signed and t.bit_width >= 32:
        return arr, ("Integer" if t.bit_width == 32 else "LongInteger")
    if t.bit_width <= 16:
        normaliser.note(col, f"{t} → int32 (SBDF Integer)")
        return arr.cast(pa.int32()), "Integer"
    if t.bit_width == 64:  # uint64
        top = pa.compute.max(arr).as_py()
        if top is not None and top > _I64_MAX:
            raise SpotfireDataError(
                f"column {col!r} ({t}) holds {top}, above the SBDF LongInteger maximum {_I64_MAX}; "
                f"convert it, e.g. to float64 (approximate) or string (exact text)"
            )
    normaliser.note(col, f"{t} → int64 (SBDF LongInteger)")
    return arr.cast(pa.int64()), "LongInteger"


def _timestamp(normaliser: _Normaliser, col: str, arr: pa.Array) -> tuple[pa.Array, str]:
    t = arr.type
    if t.tz is None:
        normaliser.note(col, f"naive {t} written as-is (no time-zone conversion)")
    else:
        aware = pd.Series(arr.to_pandas(), copy=False)
        local = aware.dt.tz_convert(normaliser.tz).dt.tz_localize(None)
        normaliser.note(
            col,
            f"{t} converted to {normaliser.tz_name} and written without a zone "
            "(SBDF DateTime has no time zone)",
        )
        arr = pa.array(local, type=pa.timestamp(t.unit), from_pandas=True)
    _sub_ms_note(normaliser, col, arr, "truncated")
    return arr, "DateTime"


def _sub_ms_note(normaliser: _Normaliser, col: str, arr: pa.Array, verb: str) -> None:
    divisor = _SUB_MS.get(getattr(arr.type, "unit", ""))
    if divisor is None or not len(arr):
        return
    raw: Any = arr.cast(pa.int64()).fill_null(0).to_numpy()
    if bool((raw % divisor != 0).any()):
        normaliser.note(col, f"sub-millisecond precision {verb} to milliseconds (SBDF keeps ms)")
