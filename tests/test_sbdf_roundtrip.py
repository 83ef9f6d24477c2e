"""Property-based round trips: what our writer writes, ``spotfire.sbdf.import_data`` reads back.

Every supported dtype with missing values, empty frames, one-row and zero-row slices, unicode
(astral, NUL), extreme values and all time units. Expected values are computed here with the
standard library (datetime, zoneinfo), not with the code under test. ~200 examples in all.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spotfire import sbdf as spotfire_sbdf

from airflow_provider_spotfire.sbdf import iter_sbdf_bytes, prepare_dataframe

MISSING = object()  # what a missing value must read back as, whatever the reader's marker
_EPOCH = dt.datetime(1970, 1, 1)
_TO_MS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}
_ZONES = ["UTC", "Europe/Stockholm", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]
_SPECIAL_TEXT = ["", "\x00", "a\x00b", "😀", "𝄞 music", "ü" * 130, "\u2028", "\U0010ffff"]

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def read_back(pieces) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.sbdf"
        path.write_bytes(b"".join(pieces))
        return spotfire_sbdf.import_data(str(path))


def plain(value):
    """A read-back value in a comparable form (missing → MISSING)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, np.floating | np.integer | np.bool_):
        return value.item()
    return value


def floor_ms(raw: int, unit: str) -> int:
    mul, div = _TO_MS[unit]
    return raw * mul // div


# ---- column strategies: (pandas column, expected values, expected SBDF type) ----------------------


def nullable(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def integer_column(draw, n):
    dtype = draw(st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]))
    info = np.iinfo(dtype)
    top = min(int(info.max), 2**63 - 1)
    with_nulls = draw(st.booleans())
    values = draw(
        st.lists(
            (nullable if with_nulls else lambda s: s)(st.integers(int(info.min), top)), min_size=n, max_size=n
        )
    )
    if with_nulls:
        column = pd.array(values, dtype=dtype.capitalize().replace("Ui", "UI"))
    else:
        column = np.array(values, dtype=dtype)
    sbdf_type = "Integer" if dtype in ("int8", "int16", "int32", "uint8", "uint16") else "LongInteger"
    return column, [MISSING if v is None else v for v in values], sbdf_type


@st.composite
def float_column(draw, n):
    width = draw(st.sampled_from([32, 64]))
    values = draw(st.lists(st.floats(width=width), min_size=n, max_size=n))
    column = np.array(values, dtype=f"float{width}")
    expected = [MISSING if math.isnan(v) else v for v in values]
    return column, expected, "SingleReal" if width == 32 else "Real"


@st.composite
def bool_column(draw, n):
    values = draw(st.lists(nullable(st.booleans()), min_size=n, max_size=n))
    if draw(st.booleans()) or any(v is None for v in values):
        column = pd.array(values, dtype="boolean")
    else:
        column = np.array(values, dtype=bool)
    return column, [MISSING if v is None else v for v in values], "Boolean"


_DT_MIN, _DT_MAX = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)


@st.composite
def datetime_column(draw, n):
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    if unit == "ns":
        raw = draw(st.lists(nullable(st.integers(-(2**63) + 1, 2**63 - 1)), min_size=n, max_size=n))
    else:
        stamps = draw(st.lists(nullable(st.datetimes(_DT_MIN, _DT_MAX)), min_size=n, max_size=n))
        per_us = {"s": 1_000_000, "ms": 1000, "us": 1}[unit]
        raw = [
            None if v is None else ((v - _EPOCH) // dt.timedelta(microseconds=1)) // per_us for v in stamps
        ]
    column = np.array(
        [np.datetime64("NaT", unit) if r is None else np.datetime64(r, unit) for r in raw],
        f"datetime64[{unit}]",
    )
    expected = [MISSING if r is None else _EPOCH + dt.timedelta(milliseconds=floor_ms(r, unit)) for r in raw]
    return column, expected, "DateTime"


@st.composite
def aware_column(draw, n, target):
    zone = draw(st.sampled_from(_ZONES))
    # 1970 … 2033: zone rules that every tz database (pytz, zoneinfo) agrees on
    micros = draw(st.lists(nullable(st.integers(0, 2_000_000_000 * 10**6)), min_size=n, max_size=n))
    utc = [
        None if m is None else dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=m)
        for m in micros
    ]
    column = pd.Series(pd.to_datetime([None if u is None else u for u in utc], utc=True)).dt.tz_convert(zone)
    expected = []
    for u in utc:
        if u is None:
            expected.append(MISSING)
        else:
            local = u.astimezone(ZoneInfo(target)).replace(tzinfo=None)
            expected.append(local.replace(microsecond=local.microsecond // 1000 * 1000))
    return column.array, expected, "DateTime"


@st.composite
def timedelta_column(draw, n):
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    days = 999_999_998 * 86_400  # seconds inside datetime.timedelta's range
    bound = {"s": days, "ms": days * 1000, "us": 2**63 - 1, "ns": 2**63 - 1}[unit]
    raw = draw(st.lists(nullable(st.integers(-bound, bound)), min_size=n, max_size=n))
    column = np.array(
        [np.timedelta64("NaT", unit) if r is None else np.timedelta64(r, unit) for r in raw],
        f"timedelta64[{unit}]",
    )
    expected = [MISSING if r is None else dt.timedelta(milliseconds=floor_ms(r, unit)) for r in raw]
    return column, expected, "TimeSpan"


@st.composite
def object_column(draw, n):
    kind = draw(st.sampled_from(["date", "time", "str", "bytes", "decimal"]))
    element = {
        "date": st.dates(),
        "time": st.times(),
        "str": st.one_of(st.text(), st.sampled_from(_SPECIAL_TEXT)),
        "bytes": st.binary(),
        "decimal": st.decimals(-(10**20), 10**20, allow_nan=False, allow_infinity=False, places=3),
    }[kind]
    values = draw(
        st.lists(nullable(element), min_size=n, max_size=n).filter(lambda vs: any(v is not None for v in vs))
    )
    expected = []
    for v in values:
        if v is None:
            expected.append(MISSING)
        elif kind == "time":
            expected.append(v.replace(microsecond=v.microsecond // 1000 * 1000))
        else:
            expected.append(v)
    sbdf_type = {"date": "Date", "time": "Time", "str": "String", "bytes": "Binary", "decimal": "Currency"}[
        kind
    ]
    return np.array(values, dtype=object), expected, sbdf_type


def any_column(n, target):
    return st.one_of(
        integer_column(n),
        float_column(n),
        bool_column(n),
        datetime_column(n),
        aware_column(n, target),
        timedelta_column(n),
        object_column(n),
    )


def assert_read_back(back: pd.DataFrame, expected: dict[str, tuple[list, str]]) -> None:
    assert list(back.columns) == list(expected)
    for name, (values, sbdf_type) in expected.items():
        assert back[name].attrs["spotfire_type"] == sbdf_type, name
        got = [plain(v) for v in back[name].tolist()]
        assert got == values, name


@st.composite
def frames(draw, max_rows=12):
    n = draw(st.integers(0, max_rows))
    target = draw(st.sampled_from(_ZONES))
    count = draw(st.integers(1, 4))
    columns, expected = {}, {}
    for i in range(count):
        column, values, sbdf_type = draw(any_column(n, target))
        columns[f"c{i}"] = column
        expected[f"c{i}"] = (values, sbdf_type)
    return pd.DataFrame(columns), expected, target


# ---- properties ----------------------------------------------------------------------------------


@settings(max_examples=110, **SETTINGS)
@given(case=frames(), data=st.data())
def test_pandas_frames_read_back_exactly(case, data):
    df, expected, target = case
    slice_rows = data.draw(st.integers(1, len(df) + 2))
    back = read_back(iter_sbdf_bytes(df, time_zone=target, slice_rows=slice_rows))
    assert len(back) == len(df)
    assert_read_back(back, expected)


@settings(max_examples=40, **SETTINGS)
@given(case=frames(max_rows=20), data=st.data())
def test_batches_read_back_as_the_whole_table(case, data):
    df, expected, target = case
    cuts = sorted(data.draw(st.lists(st.integers(0, len(df)), max_size=4)))
    bounds = [0, *cuts, len(df)]
    batches = [df.iloc[a:b].reset_index(drop=True) for a, b in itertools.pairwise(bounds)]
    if not any(len(b) for b in batches[1:]):
        batches = batches[:1]
    try:
        back = read_back(iter_sbdf_bytes(iter(batches), time_zone=target))
    except Exception as exc:  # an all-missing object batch cannot fix the schema on its own
        assert "only missing values" in str(exc)
        return
    assert_read_back(back, expected)


_ARROW_TYPES = [
    pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(),
    pa.float32(), pa.float64(), pa.bool_(), pa.string(), pa.large_string(), pa.binary(),
    pa.date32(), pa.time32("ms"), pa.time64("us"), pa.time64("ns"), pa.duration("s"),
    pa.duration("ns"), pa.timestamp("ms"), pa.timestamp("us", tz="UTC"),
]  # fmt: skip


@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_arrow_tables_read_back_exactly(data):
    n = data.draw(st.integers(0, 10))
    arrays, expected = {}, {}
    for i, t in enumerate(data.draw(st.lists(st.sampled_from(_ARROW_TYPES), min_size=1, max_size=4))):
        values, want, sbdf_type = arrow_values(data, t, n)
        arrays[f"c{i}"] = pa.array(values, type=t)
        expected[f"c{i}"] = (want, sbdf_type)
    slice_rows = data.draw(st.integers(1, n + 2))
    back = read_back(iter_sbdf_bytes(pa.table(arrays), slice_rows=slice_rows))
    assert_read_back(back, expected)


def arrow_values(data, t: pa.DataType, n: int):
    """(Python values, expected read-back values, SBDF type) for Arrow type ``t``."""
    if pa.types.is_integer(t):
        info = np.iinfo(t.to_pandas_dtype())
        values = data.draw(
            st.lists(nullable(st.integers(int(info.min), int(info.max))), min_size=n, max_size=n)
        )
        sbdf_type = (
            "Integer"
            if t.bit_width < 32 or (t.bit_width == 32 and pa.types.is_signed_integer(t))
            else "LongInteger"
        )
        return values, [MISSING if v is None else v for v in values], sbdf_type
    if pa.types.is_floating(t):
        width = t.bit_width
        values = data.draw(
            st.lists(nullable(st.floats(width=width, allow_nan=False)), min_size=n, max_size=n)
        )
        return values, [MISSING if v is None else v for v in values], "SingleReal" if width == 32 else "Real"
    if pa.types.is_boolean(t):
        values = data.draw(st.lists(nullable(st.booleans()), min_size=n, max_size=n))
        return values, [MISSING if v is None else v for v in values], "Boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        element = (
            st.binary() if pa.types.is_binary(t) else st.one_of(st.text(), st.sampled_from(_SPECIAL_TEXT))
        )
        values = data.draw(st.lists(nullable(element), min_size=n, max_size=n))
        return (
            values,
            [MISSING if v is None else v for v in values],
            "Binary" if pa.types.is_binary(t) else "String",
        )
    if pa.types.is_date(t):
        values = data.draw(st.lists(nullable(st.dates()), min_size=n, max_size=n))
        return values, [MISSING if v is None else v for v in values], "Date"
    if pa.types.is_time(t):
        values = data.draw(st.lists(nullable(st.times()), min_size=n, max_size=n))
        if t.unit == "ms":
            values = [
                None if v is None else v.replace(microsecond=v.microsecond // 1000 * 1000) for v in values
            ]
        want = [MISSING if v is None else v.replace(microsecond=v.microsecond // 1000 * 1000) for v in values]
        return values, want, "Time"
    if pa.types.is_duration(t):
        # whole seconds: what datetime.timedelta (the reader's type) holds, -999,999,999 days to its max
        low, high = (
            (int(dt.timedelta.min.total_seconds()), 86_399_999_999_999)
            if t.unit == "s"
            else (-(2**63) + 1, 2**63 - 1)
        )
        values = data.draw(st.lists(nullable(st.integers(low, high)), min_size=n, max_size=n))
        want = [MISSING if v is None else dt.timedelta(milliseconds=floor_ms(v, t.unit)) for v in values]
        return values, want, "TimeSpan"
    stamps = data.draw(st.lists(nullable(st.datetimes(_DT_MIN, _DT_MAX)), min_size=n, max_size=n))
    if t.tz:
        stamps = [None if v is None else v.replace(tzinfo=dt.UTC) for v in stamps]
        stamps = [None if v is None else min(v, dt.datetime(2262, 1, 1, tzinfo=dt.UTC)) for v in stamps]
        stamps = [None if v is None else max(v, dt.datetime(1678, 1, 1, tzinfo=dt.UTC)) for v in stamps]
    naive = [None if v is None else v.replace(tzinfo=None) for v in stamps]
    want = [MISSING if v is None else v.replace(microsecond=v.microsecond // 1000 * 1000) for v in naive]
    return stamps, want, "DateTime"


@settings(max_examples=25, **SETTINGS)
@given(case=frames(max_rows=15), data=st.data())
def test_bytes_equal_export_data_where_the_encodings_match(case, data):
    df, _, _ = case
    # Left out: decimals (one scale per column here), tz-aware columns (export_data uses the local
    # zone) and huge TimeSpans (export_data goes through a float): see docs/sbdf.md.
    keep = [c for c in df.columns if _same_encoding(df[c])]
    df = df[keep]
    if df.shape[1] == 0:
        return
    ready, _ = prepare_dataframe(df)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ref.sbdf"
        # One slice: export_data marks missing values in every slice of a column once any is missing.
        spotfire_sbdf.export_data(ready, str(path), encoding_rle=False, rows_per_slice=max(1, len(df)))
        reference = path.read_bytes()
    assert b"".join(iter_sbdf_bytes(df, slice_rows=max(1, len(df)))) == reference


def _same_encoding(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return False
    if s.dtype == object:
        return not any(isinstance(v, decimal.Decimal) for v in s)
    if s.dtype.kind == "m":  # TimeSpans from 2**53 ms on: export_data converts them inexactly
        unit = np.datetime_data(s.dtype)[0]
        ints = [int(v) for v in s.to_numpy().view("i8") if v != np.iinfo(np.int64).min]
        return all(abs(floor_ms(v, unit)) < 2**53 for v in ints)
    return True
