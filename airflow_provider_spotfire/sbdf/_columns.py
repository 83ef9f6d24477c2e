"""Column buffers: an Arrow array of a known SBDF type → numpy buffers ready to be sliced and encoded.

Fixed-width values are converted with whole-array numpy arithmetic (date/time units to SBDF
milliseconds, epochs shifted), strings and binaries are taken from the Arrow offsets and data
buffers as they are, missing values become a boolean mask (and a zero in the value array, as the
reference writer stores them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_provider_spotfire.exceptions import SpotfireDataError
from airflow_provider_spotfire.sbdf import _format as fmt

# (multiplier, divisor) turning a time unit into milliseconds, flooring.
_TO_MS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}
# SBDF DateTime/Date values read back as datetime.datetime: years 1..9999.
_MAX_MS = (3_652_059 * 86_400_000) - 1  # 9999-12-31T23:59:59.999 since 0001-01-01


@dataclass(slots=True)
class ColumnData:
    """One column of one batch as SBDF-ready buffers (see :func:`column_data`)."""

    type_name: str
    values: np.ndarray[Any, Any] | None  # fixed width: little-endian values; Boolean: flags
    offsets: np.ndarray[Any, Any] | None  # String/Binary: int64 offsets into ``data``, from 0
    data: np.ndarray[Any, Any] | None  # String/Binary: the concatenated UTF-8 / raw bytes
    invalid: np.ndarray[Any, Any] | None  # True where the value is missing; None when none is

    def __len__(self) -> int:
        if self.offsets is not None:
            return len(self.offsets) - 1
        assert self.values is not None
        return len(self.values)

    def encode(self, start: int, stop: int) -> list[Any]:
        """The column slice of rows ``start:stop`` as a list of bytes-like pieces."""
        invalid = None if self.invalid is None else self.invalid[start:stop]
        if self.offsets is not None:
            assert self.data is not None
            offsets = self.offsets[start : stop + 1]
            data = self.data[offsets[0] : offsets[-1]]
            return fmt.column_slice(fmt.plain_variable(self.type_name, np.diff(offsets), data), invalid)
        assert self.values is not None
        if self.type_name == "Boolean":
            return fmt.column_slice(fmt.bit_array("Boolean", self.values[start:stop]), invalid)
        return fmt.column_slice(fmt.plain_fixed(self.type_name, self.values[start:stop]), invalid)


def column_data(label: str, arr: pa.Array | pa.ChunkedArray, sbdf_type: str) -> ColumnData:
    """Buffers of ``arr`` written as ``sbdf_type`` (cast first when its Arrow type differs)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = _storage(label, arr, sbdf_type)
    invalid = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    if sbdf_type in fmt.VARIABLE_TYPES:
        offsets, data = _variable_buffers(arr)
        return ColumnData(sbdf_type, None, offsets, data, invalid)
    if sbdf_type == "Boolean":
        flags = (arr.fill_null(False) if invalid is not None else arr).to_numpy(zero_copy_only=False)
        return ColumnData(sbdf_type, flags, None, None, invalid)
    if sbdf_type == "Currency":
        return ColumnData(sbdf_type, _decimal_values(label, arr, invalid), None, None, invalid)
    values = _fixed_values(label, arr, sbdf_type)
    if invalid is not None:
        values = np.where(invalid, values.dtype.type(0), values)
    return ColumnData(sbdf_type, values, None, None, invalid)


# --------------------------------------------------------------------------------------------------


def _target_type(sbdf_type: str, t: pa.DataType) -> pa.DataType | None:
    """The Arrow type to cast to before reading buffers, or None when ``t`` can be read as is."""
    simple = {
        "Boolean": pa.bool_(),
        "Integer": pa.int32(),
        "LongInteger": pa.int64(),
        "SingleReal": pa.float32(),
        "Real": pa.float64(),
        "String": pa.large_string(),
        "Binary": pa.large_binary(),
    }
    if sbdf_type in simple:
        return None if t == simple[sbdf_type] else simple[sbdf_type]
    if sbdf_type == "DateTime":
        return None if pa.types.is_timestamp(t) and t.tz is None else pa.timestamp("ms")
    if sbdf_type == "Date":
        return None if pa.types.is_date(t) else pa.date32()
    if sbdf_type == "Time":
        return None if pa.types.is_time(t) else pa.time64("us")
    if sbdf_type == "TimeSpan":
        return None if pa.types.is_duration(t) else pa.duration("ms")
    if sbdf_type == "Currency":
        if pa.types.is_decimal128(t):
            return None
        return pa.decimal128(38, t.scale if pa.types.is_decimal(t) else 0)
    raise SpotfireDataError(f"unknown SBDF type {sbdf_type!r}")


def _storage(label: str, arr: pa.Array, sbdf_type: str) -> pa.Array:
    target = _target_type(sbdf_type, arr.type)
    if target is None:
        return arr
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SpotfireDataError(
            f"column {label!r} ({arr.type}) cannot be written as SBDF {sbdf_type}: {exc}; "
            f"convert the column or set another Spotfire type"
        ) from exc


def _buffer(arr: pa.Array, index: int, dtype: str, count: int) -> np.ndarray[Any, Any]:
    buf = arr.buffers()[index]
    if buf is None or count == 0:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=arr.offset + count)[arr.offset :]


def _variable_buffers(arr: pa.Array) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    if arr.null_count:  # nulls may own bytes in Arrow; SBDF writes them as empty values
        lengths = np.diff(_buffer(arr, 1, "<i8", len(arr) + 1))
        if lengths[arr.is_null().to_numpy(zero_copy_only=False)].any():
            arr = arr.fill_null(pa.scalar(b"" if pa.types.is_large_binary(arr.type) else "", arr.type))
    offsets = _buffer(arr, 1, "<i8", len(arr) + 1)
    if len(offsets) == 0:
        offsets = np.zeros(1, dtype=np.int64)
    data = arr.buffers()[2]
    start, stop = int(offsets[0]), int(offsets[-1])
    raw = np.frombuffer(data, dtype=np.uint8)[start:stop] if data is not None else np.zeros(0, np.uint8)
    return offsets - start, raw


def _fixed_values(label: str, arr: pa.Array, sbdf_type: str) -> np.ndarray[Any, Any]:
    t = arr.type
    n = len(arr)
    if sbdf_type in ("Integer", "LongInteger", "SingleReal", "Real"):
        return _buffer(arr, 1, fmt.FIXED_DTYPES[sbdf_type], n)
    if pa.types.is_date32(t):
        days = _buffer(arr, 1, "<i4", n).astype(np.int64)
        return _in_range(label, sbdf_type, days * 86_400_000 + fmt.EPOCH_OFFSET_MS, arr)
    raw = _buffer(arr, 1, "<i4" if pa.types.is_time32(t) else "<i8", n).astype(np.int64, copy=False)
    unit = "ms" if pa.types.is_date64(t) else t.unit
    mul, div = _TO_MS[unit]
    ms = raw * mul if mul != 1 else (raw // div if div != 1 else raw)
    if sbdf_type in ("DateTime", "Date"):
        return _in_range(label, sbdf_type, ms + fmt.EPOCH_OFFSET_MS, arr)
    return ms


def _in_range(label: str, sbdf_type: str, ms: np.ndarray[Any, Any], arr: pa.Array) -> np.ndarray[Any, Any]:
    valid = ms if not arr.null_count else ms[~arr.is_null().to_numpy(zero_copy_only=False)]
    if len(valid) and (int(valid.min()) < 0 or int(valid.max()) > _MAX_MS):
        raise SpotfireDataError(
            f"column {label!r} holds {sbdf_type} values outside 0001-01-01 … 9999-12-31, which "
            f"Spotfire cannot read; drop or clip them, e.g. df[{label!r}] = df[{label!r}].clip(...)"
        )
    return ms


def _decimal_values(label: str, arr: pa.Array, invalid: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any]:
    """Decimal128 (two's complement, fixed scale) → SBDF Currency (magnitude, exponent, sign)."""
    n = len(arr)
    words = _buffer(arr, 1, "<u8", 2 * n).reshape(n, 2) if n else np.zeros((0, 2), np.uint64)
    lo, hi = words[:, 0].copy(), words[:, 1].copy()
    negative = hi.view(np.int64) < 0
    if invalid is not None:
        lo[invalid], hi[invalid], negative[invalid] = 0, 0, False
    neg_lo = ~lo[negative] + np.uint64(1)
    hi[negative] = ~hi[negative] + (neg_lo == 0).astype(np.uint64)
    lo[negative] = neg_lo
    if (hi >> np.uint64(32)).any():
        raise SpotfireDataError(
            f"column {label!r} holds decimals with more than 28 significant digits, more than SBDF "
            f"Currency holds; round them, e.g. df[{label!r}] = df[{label!r}].map(lambda d: round(d, 10))"
        )
    biased = -arr.type.scale + fmt.DECIMAL_EXPONENT_BIAS
    out = np.zeros((n, 16), dtype=np.uint8)
    out[:, 0:8] = lo.astype("<u8").view(np.uint8).reshape(n, 8)
    out[:, 8:12] = hi.astype("<u8").view(np.uint8).reshape(n, 8)[:, :4]
    out[:, 14] = (biased & 0x7F) << 1
    out[:, 15] = (negative.astype(np.uint8) << 7) | (biased >> 7)
    if invalid is not None:
        out[invalid] = 0
    return out.view("V16").reshape(n)
