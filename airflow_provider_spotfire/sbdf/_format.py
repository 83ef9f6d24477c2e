"""SBDF byte layout: sections, metadata and value arrays (see docs/sbdf.md, "Format notes").

Everything here turns already-typed numpy buffers into bytes; nothing loops over values in Python.
All integers are little-endian.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from airflow_provider_spotfire.exceptions import SpotfireDataError

SECTION_MARK = b"\xdf\x5b"
FILE_HEADER = SECTION_MARK + b"\x01" + b"\x01\x00"  # section 1, format version 1.0
TABLE_METADATA = SECTION_MARK + b"\x02"
TABLE_SLICE = SECTION_MARK + b"\x03"
COLUMN_SLICE = SECTION_MARK + b"\x04"
TABLE_END = SECTION_MARK + b"\x05"

PLAIN, RUN_LENGTH, BIT_ARRAY = 1, 2, 3

#: SBDF value type ids by Spotfire type name.
TYPE_IDS: dict[str, int] = {
    "Boolean": 0x01,
    "Integer": 0x02,
    "LongInteger": 0x03,
    "SingleReal": 0x04,
    "Real": 0x05,
    "DateTime": 0x06,
    "Date": 0x07,
    "Time": 0x08,
    "TimeSpan": 0x09,
    "String": 0x0A,
    "Binary": 0x0C,
    "Currency": 0x0D,
}
#: numpy dtype of the plain-array values of each fixed-width type (Boolean is a bit array).
FIXED_DTYPES: dict[str, str] = {
    "Integer": "<i4",
    "LongInteger": "<i8",
    "SingleReal": "<f4",
    "Real": "<f8",
    "DateTime": "<i8",
    "Date": "<i8",
    "Time": "<i8",
    "TimeSpan": "<i8",
    "Currency": "V16",
}
VARIABLE_TYPES = frozenset({"String", "Binary"})

#: Milliseconds from 0001-01-01T00:00 (the SBDF DateTime/Date epoch) to 1970-01-01T00:00.
EPOCH_OFFSET_MS = 719_162 * 86_400_000
DECIMAL_EXPONENT_BIAS = 6176
IS_INVALID = b"IsInvalid"

_INT32 = struct.Struct("<i")
_INT64 = struct.Struct("<q")
_RESERVED_COLUMN_METADATA = ("Name", "DataType")


def int32(value: int) -> bytes:
    """A little-endian signed 32-bit integer."""
    return _INT32.pack(value)


def sized(data: bytes) -> bytes:
    """An int32 length followed by ``data`` (how SBDF writes names and single string values)."""
    return _INT32.pack(len(data)) + data


# --------------------------------------------------------------------------------------------------
# Value arrays
# --------------------------------------------------------------------------------------------------


def plain_fixed(type_name: str, values: np.ndarray[Any, Any]) -> list[Any]:
    """Plain encoding of a fixed-width array: encoding, type, count, raw little-endian values."""
    return [bytes((PLAIN, TYPE_IDS[type_name])), int32(len(values)), _raw_bytes(values)]


def bit_array(type_name: str, flags: np.ndarray[Any, Any]) -> list[Any]:
    """Bit-array encoding: encoding, type, count, bits packed most significant bit first."""
    return [bytes((BIT_ARRAY, TYPE_IDS[type_name])), int32(len(flags)), np.packbits(flags).tobytes()]


def plain_variable(type_name: str, lengths: np.ndarray[Any, Any], data: np.ndarray[Any, Any]) -> list[Any]:
    """Plain encoding of String/Binary values: count, byte size, then each value as a 7-bit
    varint length followed by its bytes."""
    packed = pack_varint_prefixed(lengths, data)
    head = bytes((PLAIN, TYPE_IDS[type_name])) + int32(len(lengths)) + int32(len(packed))
    return [head, _raw_bytes(packed)]


def _raw_bytes(values: np.ndarray[Any, Any]) -> memoryview:
    """The array's memory, without a copy (``values`` is contiguous and little-endian)."""
    return memoryview(np.ascontiguousarray(values).view(np.uint8))  # type: ignore[arg-type]


def varint_sizes(lengths: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Bytes taken by the 7-bit varint encoding of each (non-negative) length."""
    sizes = np.ones(len(lengths), dtype=np.int64)
    for shift in (7, 14, 21, 28):
        sizes += lengths >= (1 << shift)
    return sizes


def pack_varint_prefixed(lengths: np.ndarray[Any, Any], data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Interleave varint length prefixes with the concatenated value bytes ``data``, vectorised.

    ``lengths`` are the byte lengths of consecutive values in ``data`` (their sum is ``len(data)``).
    """
    lengths = lengths.astype(np.int64, copy=False)
    sizes = varint_sizes(lengths)
    ends = np.cumsum(sizes + lengths)
    total = int(ends[-1]) if len(ends) else 0
    out = np.empty(total, dtype=np.uint8)
    if total == 0:
        return out
    starts = ends - (sizes + lengths)
    is_data = np.ones(total, dtype=bool)
    if int(sizes.max()) == 1:  # every value shorter than 128 bytes: one prefix byte each
        out[starts] = lengths
        is_data[starts] = False
    else:
        for k in range(int(sizes.max())):
            sel = sizes > k
            pos = starts[sel] + k
            part = (lengths[sel] >> (7 * k)) & 0x7F
            more = sizes[sel] > k + 1
            out[pos] = part | (more.astype(np.int64) << 7)
            is_data[pos] = False
    out[is_data] = data
    return out


def column_slice(values: list[Any], invalid: np.ndarray[Any, Any] | None) -> list[Any]:
    """A column slice: its value array and, when some value is missing, the IsInvalid property."""
    if invalid is None or not invalid.any():
        return [COLUMN_SLICE, *values, int32(0)]
    return [COLUMN_SLICE, *values, int32(1), sized(IS_INVALID), *bit_array("Boolean", invalid)]


# --------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------


def metadata_value(owner: str, name: str, value: Any) -> tuple[int, bytes]:
    """(type id, encoded bytes) of one metadata value; raises naming the owner and the key."""
    if isinstance(value, list | tuple) and len(value) == 1:  # spotfire's reader returns [value]
        value = value[0]
    if isinstance(value, bool | np.bool_):
        return TYPE_IDS["Boolean"], bytes((1 if value else 0,))
    if isinstance(value, np.int32):
        return TYPE_IDS["Integer"], int32(int(value))
    if isinstance(value, int | np.integer):
        if not -(2**63) <= int(value) < 2**63:
            raise SpotfireDataError(f"{owner} metadata {name!r}: {value} does not fit an SBDF LongInteger")
        return TYPE_IDS["LongInteger"], _INT64.pack(int(value))
    if isinstance(value, np.float32):
        return TYPE_IDS["SingleReal"], struct.pack("<f", float(value))
    if isinstance(value, float | np.floating):
        return TYPE_IDS["Real"], struct.pack("<d", float(value))
    if isinstance(value, str):
        return TYPE_IDS["String"], sized(_utf8(owner, name, value))
    if isinstance(value, bytes | bytearray):
        return TYPE_IDS["Binary"], sized(bytes(value))
    if isinstance(value, decimal.Decimal):
        return TYPE_IDS["Currency"], decimal_bytes(owner, name, value)
    return _temporal_metadata_value(owner, name, value)


def _temporal_metadata_value(owner: str, name: str, value: Any) -> tuple[int, bytes]:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise SpotfireDataError(
                f"{owner} metadata {name!r} is a time-zone-aware datetime; SBDF DateTime has no zone, "
                "pass a naive datetime (e.g. value.astimezone(UTC).replace(tzinfo=None))"
            )
        delta = value - dt.datetime(1, 1, 1)
        return TYPE_IDS["DateTime"], _INT64.pack(delta // dt.timedelta(milliseconds=1))
    if isinstance(value, dt.date):
        return TYPE_IDS["Date"], _INT64.pack((value - dt.date(1, 1, 1)).days * 86_400_000)
    if isinstance(value, dt.time):
        ms = ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000
        return TYPE_IDS["Time"], _INT64.pack(ms)
    if isinstance(value, dt.timedelta):
        return TYPE_IDS["TimeSpan"], _INT64.pack(value // dt.timedelta(milliseconds=1))
    raise SpotfireDataError(
        f"{owner} metadata {name!r} is a {type(value).__name__}; SBDF metadata values are str, bool, "
        "int, float, bytes, decimal.Decimal, datetime, date, time or timedelta"
    )


def decimal_bytes(owner: str, name: str, value: decimal.Decimal) -> bytes:
    """One SBDF Currency value: 96-bit coefficient, biased exponent and sign (16 bytes)."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise SpotfireDataError(f"{owner} {name!r}: {value} is not a finite decimal; SBDF cannot store it")
    coefficient = int("".join(map(str, digits)) or "0")
    if coefficient >= 1 << 96:
        raise SpotfireDataError(f"{owner} {name!r}: {value} has more digits than SBDF Currency holds (28)")
    biased = exponent + DECIMAL_EXPONENT_BIAS
    tail = bytes(((biased & 0x7F) << 1, (sign << 7) | (biased >> 7)))
    return coefficient.to_bytes(12, "little") + b"\x00\x00" + tail


def _utf8(owner: str, name: str, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpotfireDataError(f"{owner} metadata {name!r} is not valid Unicode text: {exc}") from exc


def table_metadata_section(
    table_metadata: Mapping[str, Any],
    columns: Sequence[tuple[str, str]],
    column_metadata: Mapping[str, Mapping[str, Any]],
) -> bytes:
    """The table metadata section: table properties, then per-column Name/DataType and extras.

    ``columns`` is ``[(name, sbdf type), ...]``; ``column_metadata`` maps column names to extra
    properties. Column property names are listed once (first appearance order, then Name and
    DataType, as the reference writer orders them); each column then says which it has.
    """
    parts = [TABLE_METADATA, int32(len(table_metadata))]
    for key, value in table_metadata.items():
        type_id, encoded = metadata_value("table", key, value)
        parts += [sized(_utf8("table", key, key)), bytes((type_id, 1)), encoded, b"\x00"]
    per_column: list[dict[str, tuple[int, bytes]]] = []
    kinds: dict[str, int] = {}
    for name, sbdf_type in columns:
        owner = f"column {name!r}"
        entries = {key: metadata_value(owner, key, v) for key, v in column_metadata.get(name, {}).items()}
        entries["Name"] = (TYPE_IDS["String"], sized(_utf8(owner, "Name", name)))
        entries["DataType"] = (TYPE_IDS["Binary"], sized(bytes((TYPE_IDS[sbdf_type],))))
        for key, (type_id, _) in entries.items():
            if kinds.setdefault(key, type_id) != type_id:
                raise SpotfireDataError(
                    f"column metadata {key!r} has different value types in different columns; "
                    "SBDF needs one type per property name, convert the values to one type"
                )
        per_column.append(entries)
    names = list(kinds)  # first appearance: a column's own properties, then Name and DataType
    parts += [int32(len(columns)), int32(len(names))]
    for key in names:
        parts += [sized(_utf8("column", key, key)), bytes((kinds[key], 0))]
    for entries in per_column:
        for key in names:
            parts.append(b"\x01" + entries[key][1] if key in entries else b"\x00")
    return b"".join(parts)


def check_column_metadata(names: Sequence[str], column_metadata: Mapping[str, Mapping[str, Any]]) -> None:
    """Reject metadata for unknown columns or for the reserved Name/DataType properties."""
    unknown = [c for c in column_metadata if c not in names]
    if unknown:
        raise SpotfireDataError(
            f"column_metadata names columns the table does not have: {', '.join(map(repr, unknown))}; "
            f"the columns are {', '.join(map(repr, names))}"
        )
    for col, props in column_metadata.items():
        reserved = [k for k in props if k in _RESERVED_COLUMN_METADATA]
        if reserved:
            raise SpotfireDataError(
                f"column_metadata for {col!r} sets {', '.join(map(repr, reserved))}, which the writer "
                "sets from the column itself; remove it"
            )
