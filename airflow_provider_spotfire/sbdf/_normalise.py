"""Normalisation of pandas DataFrames before they are written as SBDF.

``spotfire.sbdf.export_data`` (spotfire 2.4.x) rejects many common dtypes (int8/int16, unsigned
ints, float16, pyarrow-backed dtypes, all-null or mixed-type object columns), converts
time-zone-aware datetimes to the *machine's local zone* and drops sub-millisecond precision
inconsistently. The rules here normalise a DataFrame explicitly and predictably, report every
change as a human-readable note, and raise :class:`SpotfireDataError` naming the column and the
fix when a column cannot be written. Both our writer and :func:`prepare_dataframe` (for callers of
``export_data``) use them.

Columns that need no change are not copied: the prepared frame is a shallow copy of the input that
shares their memory (treat it as read-only). The input frame is never modified.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype

from airflow_provider_spotfire.exceptions import SpotfireDataError

_I64_MIN = int(np.iinfo(np.int64).min)
_I64_MAX = int(np.iinfo(np.int64).max)
_NAT = np.iinfo(np.int64).min
_SUBMS_DIVISOR = {"ns": 1_000_000, "us": 1_000}  # units finer than ms; "ms" and "s" are exact

_OBJECT_TYPES: dict[type, str] = {
    str: "String",
    bytes: "Binary",
    dt.date: "Date",
    dt.time: "Time",
    decimal.Decimal: "Currency",
}

_FIX_MIXED = (
    "convert it to a single type, e.g. df[{col!r}] = df[{col!r}].astype('string') for text, "
    "pd.to_numeric(df[{col!r}]) for numbers or pd.to_datetime(df[{col!r}]) for dates"
)


@dataclass(slots=True)
class _Prepared:
    frame: pd.DataFrame
    notes: list[str]
    column_types: dict[str, str]


def prepare_dataframe(
    df: pd.DataFrame, *, timezone: str | dt.tzinfo = "UTC", keep_index: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """Return a copy of ``df`` that ``spotfire.sbdf.export_data`` writes faithfully, plus notes.

    The copy is shallow: unchanged columns share memory with ``df``; ``df`` itself is never modified.
    Raises :class:`SpotfireDataError` (naming the column and the fix) for data SBDF cannot hold.
    """
    prepared = _prepare(df, timezone=timezone, keep_index=keep_index)
    return prepared.frame, prepared.notes


# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------


def _resolve_tz(timezone: str | dt.tzinfo) -> dt.tzinfo:
    try:
        tz = pd.Timestamp("2000-01-01", tz=timezone).tzinfo
    except Exception as exc:
        raise SpotfireDataError(
            f"unknown time zone {timezone!r}; pass an IANA name such as 'UTC' or 'Europe/Stockholm'"
        ) from exc
    assert tz is not None
    return tz


def _tz_name(timezone: str | dt.tzinfo) -> str:
    return timezone if isinstance(timezone, str) else str(timezone)


def _type_name(t: type) -> str:
    module = t.__module__
    if module == "builtins":
        return t.__qualname__
    return f"{module.split('.')[0]}.{t.__qualname__}"


def _nullable_name(np_dtype: np.dtype[Any]) -> str | np.dtype[Any]:
    """Nullable pandas dtype for a numpy bool/int dtype (floats hold NaN themselves)."""
    if np_dtype.kind == "b":
        return "boolean"
    if np_dtype.kind == "i":
        return f"Int{np_dtype.itemsize * 8}"
    if np_dtype.kind == "u":
        return f"UInt{np_dtype.itemsize * 8}"
    return np_dtype


class _Normaliser:
    """Normalises one column at a time; collects notes."""

    def __init__(self, timezone: str | dt.tzinfo, *, arrow_strings: bool = False) -> None:
        self.tz = _resolve_tz(timezone)
        self.tz_name = _tz_name(timezone)
        self.notes: list[str] = []
        # Our writer reads Arrow string buffers directly: no need to make Python str objects.
        self.arrow_strings = arrow_strings
        self.known_types: dict[str, str] = {}

    def note(self, col: str, text: str) -> None:
        self.notes.append(f"column {col!r}: {text}")

    # Returns (replacement series or None when unchanged, SBDF type name).
    def column(self, col: str, s: pd.Series, user_type: str | None) -> tuple[pd.Series | None, str]:
        new, sbdf_type = self._dispatch(col, s, user_type)
        return new, (user_type or sbdf_type)

    def _dispatch(self, col: str, s: pd.Series, user_type: str | None) -> tuple[pd.Series | None, str]:
        dtype = s.dtype

        # Wrappers: unwrap, then normalise the result.
        if isinstance(dtype, pd.SparseDtype):
            dense = s.sparse.to_dense()
            self.note(col, f"{dtype} → {dense.dtype} (sparse values densified)")
            return self._again(col, dense, user_type)
        if isinstance(dtype, pd.CategoricalDtype):
            return self._again(col, self._decategorise(col, s), user_type)
        if self.arrow_strings and _is_arrow_string(dtype):
            self._all_null_note(col, s, "String")
            return None, "String"
        if isinstance(dtype, pd.ArrowDtype):
            return self._again(col, self._from_arrow(col, s, dtype), user_type)

        if isinstance(dtype, pd.StringDtype):
            if dtype.storage == "python" and dtype.na_value is pd.NA:
                self._all_null_note(col, s, "String")
                return None, "String"
            new = s.astype(pd.StringDtype("python"))
            self.note(col, f"{dtype.name}[{dtype.storage}] → string[python] (SBDF String)")
            return new, "String"
        if isinstance(dtype, pd.DatetimeTZDtype):
            return self._datetime_tz(col, s, dtype)
        if isinstance(dtype, np.dtype) and dtype.kind == "M":
            return self._datetime_naive(col, s, changed=False)
        if isinstance(dtype, np.dtype) and dtype.kind == "m":
            return self._timedelta(col, s, changed=False)
        if isinstance(dtype, np.dtype) and dtype.kind == "O":
            return self._object(col, s, user_type)
        if isinstance(dtype, pd.BooleanDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "b"):
            self._all_null_note(col, s, "Boolean")
            return None, "Boolean"
        if getattr(dtype, "kind", None) in ("i", "u"):
            return self._integer(col, s)
        if getattr(dtype, "kind", None) == "f":
            return self._float(col, s)
        raise SpotfireDataError(
            f"column {col!r} has dtype {str(dtype)!r}, which SBDF cannot store; "
            f"convert it, e.g. df[{col!r}] = df[{col!r}].astype('string')"
        )

    def _again(self, col: str, s: pd.Series, user_type: str | None) -> tuple[pd.Series, str]:
        new, sbdf_type = self._dispatch(col, s, user_type)
        return (s if new is None else new), sbdf_type

    def _all_null_note(self, col: str, s: pd.Series, sbdf_type: str) -> None:
        if len(s) and not s.notna().any():
            self.note(col, f"all values are missing; written as SBDF {sbdf_type} from its dtype {s.dtype}")

    # ---- wrappers ------------------------------------------------------------------------------
    def _decategorise(self, col: str, s: pd.Series) -> pd.Series:
        target: Any = s.cat.categories.dtype
        if isinstance(target, np.dtype) and target.kind in "biu" and s.isna().any():
            target = _nullable_name(target)
        new = s.astype(target)
        self.note(col, f"category → {new.dtype} (the categories' values are written)")
        return new

    def _from_arrow(self, col: str, s: pd.Series, dtype: pd.ArrowDtype) -> pd.Series:
        import pyarrow as pa  # present whenever an ArrowDtype exists

        pat = dtype.pyarrow_dtype
        target: Any
        if pa.types.is_integer(pat):
            target = _nullable_name(np.dtype(pat.to_pandas_dtype()))
        elif pa.types.is_floating(pat):
            target = np.dtype(pat.to_pandas_dtype())
        elif pa.types.is_boolean(pat):
            target = "boolean"
        elif pa.types.is_string(pat) or pa.types.is_large_string(pat) or _is_string_view(pa, pat):
            target = pd.StringDtype("python")
        elif pa.types.is_timestamp(pat):
            target = pd.DatetimeTZDtype(pat.unit, pat.tz) if pat.tz else np.dtype(f"datetime64[{pat.unit}]")
        elif pa.types.is_duration(pat):
            target = np.dtype(f"timedelta64[{pat.unit}]")
        else:  # date, time, decimal, binary, dictionary, null, nested: Python objects
            target = np.dtype(object)
        new = s.astype(target)
        self.note(col, f"{dtype} → {new.dtype} (pyarrow-backed dtype converted)")
        return new

    # ---- numbers -------------------------------------------------------------------------------
    def _integer(self, col: str, s: pd.Series) -> tuple[pd.Series | None, str]:
        dtype = s.dtype
        np_dtype: np.dtype[Any] = dtype if isinstance(dtype, np.dtype) else dtype.numpy_dtype
        nullable = isinstance(dtype, ExtensionDtype)
        bits = np_dtype.itemsize * 8
        if np_dtype.kind == "i" and bits >= 32:
            sbdf_type = "Integer" if bits == 32 else "LongInteger"
            self._all_null_note(col, s, sbdf_type)
            return None, sbdf_type
        if bits <= 16:
            target_bits, sbdf_type = 32, "Integer"
        else:
            target_bits, sbdf_type = 64, "LongInteger"
            if bits == 64:  # uint64: only when every value fits in int64
                top = s.max()
                if not pd.isna(top) and int(top) > _I64_MAX:
                    raise SpotfireDataError(
                        f"column {col!r} ({dtype}) holds {int(top)}, above the SBDF LongInteger maximum "
                        f"{_I64_MAX}; convert it, e.g. df[{col!r}] = df[{col!r}].astype('float64') "
                        f"(approximate) or .astype('string') (exact text)"
                    )
        target = f"Int{target_bits}" if nullable else f"int{target_bits}"
        new = s.astype(target)
        self.note(col, f"{dtype} → {target} (SBDF {sbdf_type})")
        return new, sbdf_type

    def _float(self, col: str, s: pd.Series) -> tuple[pd.Series | None, str]:
        dtype = s.dtype
        np_dtype: np.dtype[Any] = dtype if isinstance(dtype, np.dtype) else dtype.numpy_dtype
        if np_dtype.itemsize <= 2:
            new = s.astype("float32")
            self.note(col, f"{dtype} → float32 (SBDF SingleReal)")
            return new, "SingleReal"
        if np_dtype.itemsize > 8:  # longdouble: SBDF's widest real is a double
            new = s.astype("float64")
            self.note(col, f"{dtype} → float64 (SBDF Real; extended precision dropped)")
            return new, "Real"
        sbdf_type = "SingleReal" if np_dtype.itemsize == 4 else "Real"
        self._all_null_note(col, s, sbdf_type)
        return None, sbdf_type

    # ---- dates and times -----------------------------------------------------------------------
    def _datetime_tz(self, col: str, s: pd.Series, dtype: pd.DatetimeTZDtype) -> tuple[pd.Series, str]:
        naive = s.dt.tz_convert(self.tz).dt.tz_localize(None)
        self.note(
            col,
            f"{dtype} converted to {self.tz_name} and written without a zone "
            "(SBDF DateTime has no time zone)",
        )
        new, _ = self._datetime_naive(col, naive, changed=True)
        return (naive if new is None else new), "DateTime"

    def _datetime_naive(self, col: str, s: pd.Series, *, changed: bool) -> tuple[pd.Series | None, str]:
        if not changed:
            self.note(col, f"naive {s.dtype} written as-is (no time-zone conversion)")
        self._all_null_note(col, s, "DateTime")
        if _has_sub_ms(s):
            self.note(col, "sub-millisecond precision truncated to milliseconds (SBDF keeps ms)")
            return _floor_to_ms(s), "DateTime"
        return None, "DateTime"

    def _timedelta(self, col: str, s: pd.Series, *, changed: bool) -> tuple[pd.Series | None, str]:
        self._all_null_note(col, s, "TimeSpan")
        if _has_sub_ms(s):
            self.note(col, "sub-millisecond precision floored to milliseconds (SBDF keeps ms)")
            return _floor_to_ms(s), "TimeSpan"
        return (s if changed else None), "TimeSpan"

    # ---- object columns ------------------------------------------------------------------------
    def _object(self, col: str, s: pd.Series, user_type: str | None) -> tuple[pd.Series | None, str]:
        arr = s.to_numpy()
        inferred = pd.api.types.infer_dtype(arr, skipna=True)  # C loop; no per-value Python work
        if inferred == "string":
            first = type(next(v for v in arr if isinstance(v, str)))
            if first is str:  # spotfire checks type(first value) and isinstance() for the rest
                return None, "String"
            self.note(col, f"object ({_type_name(first)} values) → string[python] (SBDF String)")
            return s.astype(pd.StringDtype("python")), "String"
        if inferred == "bytes":
            return None, "Binary"
        missing = pd.isna(arr)
        if missing.all():
            known = user_type or self.known_types.get(col)
            if known:
                return None, known
            if len(arr) == 0:
                new = s.astype(pd.StringDtype("python"))
                self.note(col, "no rows and dtype object; written as SBDF String")
                return new, "String"
            raise SpotfireDataError(
                f"column {col!r} has dtype object and only missing values, so its SBDF type cannot be "
                f"determined; give it a dtype, e.g. df[{col!r}] = df[{col!r}].astype('string') "
                f"(or 'float64', 'Int64', 'datetime64[ns]', 'boolean')"
            )
        values = arr[~missing] if missing.any() else arr
        kinds = list(dict.fromkeys(map(type, values)))
        # spotfire accepts exactly datetime/date/timedelta (not subclasses such as pendulum's)
        if all(issubclass(k, dt.datetime) for k in kinds):
            exact = kinds == [dt.datetime] or kinds == [pd.Timestamp]
            return self._object_datetimes(col, s, arr, missing, values, not exact)
        plain_dates = all(issubclass(k, dt.date) and not issubclass(k, dt.datetime) for k in kinds)
        if plain_dates and kinds != [dt.date]:
            out = np.empty(len(arr), dtype=object)
            out[missing] = None
            out[~missing] = [dt.date(v.year, v.month, v.day) for v in values]
            self.note(col, f"object ({', '.join(map(_type_name, kinds))} values) → datetime.date (SBDF Date)")
            return pd.Series(out, index=s.index, name=s.name, dtype=object), "Date"
        if all(issubclass(k, dt.timedelta) for k in kinds):
            try:
                td = pd.to_timedelta(s)
            except (ValueError, OverflowError) as exc:
                raise SpotfireDataError(
                    f"column {col!r}: cannot convert its timedeltas ({exc}); convert it, "
                    f"e.g. df[{col!r}] = df[{col!r}].astype('string')"
                ) from exc
            self.note(col, f"object (timedelta values) → {td.dtype} (SBDF TimeSpan)")
            new, _ = self._timedelta(col, td, changed=True)
            return new, "TimeSpan"
        if len(kinds) > 1:
            found = ", ".join(_type_name(k) for k in kinds)
            raise SpotfireDataError(
                f"column {col!r} mixes Python types ({found}); SBDF columns hold one type; "
                + _FIX_MIXED.format(col=col)
            )
        return self._object_scalars(col, s, kinds[0], missing, values, user_type)

    def _object_scalars(
        self,
        col: str,
        s: pd.Series,
        kind: type,
        missing: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
        user_type: str | None,
    ) -> tuple[pd.Series | None, str]:
        """An object column whose values are all of one Python type ``kind``."""
        if kind is bool:
            target: Any = "boolean" if missing.any() else "bool"
            self.note(col, f"object (bool values) → {target} (SBDF Boolean)")
            return s.astype(target), "Boolean"
        if kind is int:
            lo, hi = min(values), max(values)
            if lo < _I64_MIN or hi > _I64_MAX:
                bad = hi if hi > _I64_MAX else lo
                raise SpotfireDataError(
                    f"column {col!r} holds the integer {bad}, outside the SBDF LongInteger range; "
                    f"convert it, e.g. df[{col!r}] = df[{col!r}].astype('float64') (approximate) "
                    f"or .astype('string') (exact text)"
                )
            target = "Int64" if missing.any() else "int64"
            self.note(col, f"object (int values) → {target} (SBDF LongInteger)")
            return s.astype(target), "LongInteger"
        if kind is float:
            self.note(col, "object (float values) → float64 (SBDF Real)")
            return s.astype("float64"), "Real"
        if issubclass(kind, np.number | np.bool_):
            np_dtype = np.dtype(kind)
            target = _nullable_name(np_dtype) if missing.any() else np_dtype
            new = s.astype(target)
            self.note(col, f"object ({_type_name(kind)} values) → {new.dtype}")
            return self._again(col, new, user_type)
        if kind in _OBJECT_TYPES:
            if kind is dt.time and any(v.microsecond % 1000 for v in values):
                self.note(col, "sub-millisecond precision truncated to milliseconds (SBDF keeps ms)")
            return None, _OBJECT_TYPES[kind]
        raise SpotfireDataError(
            f"column {col!r} holds {_type_name(kind)} values, which SBDF cannot store; "
            f"convert them, e.g. df[{col!r}] = df[{col!r}].astype('string')"
        )

    def _object_datetimes(
        self,
        col: str,
        s: pd.Series,
        arr: np.ndarray[Any, Any],
        missing: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
        mixed_classes: bool,
    ) -> tuple[pd.Series | None, str]:
        aware = [v.tzinfo is not None for v in values]
        if any(aware) and not all(aware):
            raise SpotfireDataError(
                f"column {col!r} mixes time-zone-aware and naive datetimes; make them consistent, "
                f"e.g. df[{col!r}] = pd.to_datetime(df[{col!r}], utc=True)"
            )
        is_aware = bool(aware) and aware[0]
        sub_ms = any(v.microsecond % 1000 or (isinstance(v, pd.Timestamp) and v.nanosecond) for v in values)
        if is_aware:
            self.note(
                col,
                f"time-zone-aware datetimes converted to {self.tz_name} and written without a zone "
                "(SBDF DateTime has no time zone)",
            )
        else:
            self.note(col, "naive datetimes written as-is (no time-zone conversion)")
        if sub_ms:
            self.note(col, "sub-millisecond precision truncated to milliseconds (SBDF keeps ms)")
        if not (is_aware or sub_ms or mixed_classes):
            return None, "DateTime"
        tz = self.tz
        out = np.empty(len(arr), dtype=object)
        out[missing] = None
        out[~missing] = [_plain_datetime(v, tz) for v in values]
        return pd.Series(out, index=s.index, name=s.name, dtype=object), "DateTime"


def _is_arrow_string(dtype: Any) -> bool:
    """A pandas dtype whose values live in Arrow string buffers."""
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        pat = dtype.pyarrow_dtype
        return bool(pa.types.is_string(pat) or pa.types.is_large_string(pat) or _is_string_view(pa, pat))
    return False


def _is_string_view(pa: Any, pat: Any) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(pat))


def _plain_datetime(v: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Naive ``datetime.datetime`` in ``tz`` (if aware), floored to whole milliseconds."""
    if isinstance(v, pd.Timestamp):
        if v.tzinfo is not None:
            v = v.tz_convert(tz).tz_localize(None)
        return pd.Timestamp(v).floor("ms").to_pydatetime()
    if v.tzinfo is not None:
        v = v.astimezone(tz)
    us = v.microsecond - v.microsecond % 1000
    return dt.datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, us)


def _has_sub_ms(s: pd.Series) -> bool:
    """Whether a naive datetime64/timedelta64 series has values finer than a millisecond."""
    unit = np.datetime_data(s.dtype)[0]
    divisor = _SUBMS_DIVISOR.get(unit)
    if divisor is None:
        return False
    ints = s.to_numpy().view("i8")
    return bool(((ints % divisor != 0) & (ints != _NAT)).any())


def _floor_to_ms(s: pd.Series) -> pd.Series:
    """A naive datetime64/timedelta64 series floored to milliseconds, as a ``[ms]`` series.

    Integer floor division, not ``Series.dt.floor``: flooring in nanoseconds overflows next to
    the ns range's minimum (1677-09-21 00:12:43.145...), milliseconds do not.
    """
    unit = np.datetime_data(s.dtype)[0]
    ints = s.to_numpy().view("i8")
    ms = np.floor_divide(ints, _SUBMS_DIVISOR[unit])
    ms[ints == _NAT] = _NAT
    kind = "datetime64" if s.dtype.kind == "M" else "timedelta64"
    return pd.Series(ms.view(f"{kind}[ms]"), index=s.index, name=s.name, copy=False)


def _column_label(name: Any) -> str:
    return name if isinstance(name, str) else str(name)


def _prepare(
    df: pd.DataFrame,
    *,
    timezone: str | dt.tzinfo,
    keep_index: bool,
    arrow_strings: bool = False,
    known_types: Mapping[str, str] | None = None,
) -> _Prepared:
    """Normalise ``df``. ``known_types`` (the schema of earlier batches) types all-missing object
    columns that would otherwise be an error."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    normaliser = _Normaliser(timezone, arrow_strings=arrow_strings)
    normaliser.known_types = dict(known_types or {})
    notes = normaliser.notes
    original = list(df.columns)
    labels = column_labels(original, notes)
    index_cols = _index_columns(df, labels, notes) if keep_index else []
    if not keep_index and not _is_default_index(df.index):
        notes.append("index dropped (SBDF has no index); pass keep_index=True to write it as column(s)")
    if df.shape[1] + len(index_cols) == 0:
        raise SpotfireDataError(
            "the DataFrame has no columns; SBDF needs at least one column "
            "(spotfire.sbdf.import_data cannot read a table without columns)"
        )

    # User-set Spotfire types (spotfire.set_spotfire_types) are kept.
    user_types = {pos: t for pos, name in enumerate(original) if (t := df[name].attrs.get("spotfire_type"))}
    column_types: dict[str, str] = {}
    leading: list[tuple[str, pd.Series]] = []
    for label, series in index_cols:
        new, sbdf_type = normaliser.column(label, series, None)
        leading.append((label, series if new is None else new))
        column_types[label] = sbdf_type
    replacements: list[tuple[int, pd.Series]] = []
    for pos, label in enumerate(labels):
        new, sbdf_type = normaliser.column(label, df.iloc[:, pos], user_types.get(pos))
        if new is not None:
            replacements.append((pos, new))
        column_types[label] = sbdf_type
    # Index columns first, in index order.
    column_types = {k: column_types[k] for k in [n for n, _ in leading] + labels}

    out = df.copy(deep=False)
    for pos, new in replacements:
        out.isetitem(pos, _raw(new))
    if labels != original:
        out.columns = pd.Index(labels, dtype=object)
    if not _is_default_index(out.index):
        out.index = pd.RangeIndex(len(out))
    for i, (label, series) in enumerate(leading):
        out.insert(i, label, _raw(series))

    # Re-apply user-set Spotfire types last: pandas keeps them in its item cache until `out` changes.
    for pos, t in user_types.items():
        out[labels[pos]].attrs["spotfire_type"] = t
    return _Prepared(frame=out, notes=notes, column_types=column_types)


def _is_default_index(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def column_labels(original: list[Any], notes: list[str]) -> list[str]:
    """Column names as unique, non-empty strings (notes for converted names)."""
    dup = pd.Index(original)
    if dup.has_duplicates:
        names = list(dict.fromkeys(dup[dup.duplicated()]))
        raise SpotfireDataError(
            f"duplicate column names: {', '.join(repr(n) for n in names)}; SBDF needs unique names, "
            "rename them, e.g. df.columns = [...]"
        )
    labels: list[str] = []
    for pos, name in enumerate(original):
        label = _column_label(name)
        if label == "":
            raise SpotfireDataError(
                f"the column at position {pos} has an empty name; SBDF needs a name, "
                "rename it, e.g. df = df.rename(columns={'': 'value'})"
            )
        if not isinstance(name, str):
            notes.append(f"column {label!r}: name {name!r} ({type(name).__name__}) converted to str")
        labels.append(label)
    clashes = [label for label, count in Counter(labels).items() if count > 1]
    if clashes:
        raise SpotfireDataError(
            f"duplicate column names after converting names to str: {', '.join(map(repr, clashes))}; "
            "rename the columns so their str() values are unique"
        )
    return labels


def _index_columns(df: pd.DataFrame, labels: list[str], notes: list[str]) -> list[tuple[str, pd.Series]]:
    """The index levels that become leading columns (keep_index=True)."""
    index = df.index
    index_cols: list[tuple[str, pd.Series]] = []
    level_names: list[str] = []
    for i in range(index.nlevels):
        lname = index.names[i]
        if lname is None:
            label = "index" if index.nlevels == 1 else f"level_{i}"
        else:
            label = _column_label(lname)
            if label == "":
                raise SpotfireDataError(
                    f"index level {i} has an empty name; name it, e.g. df.index.name = 'id' "
                    "(df.index.names = [...] for a MultiIndex)"
                )
        if label in labels or label in level_names:
            raise SpotfireDataError(
                f"index level {label!r} clashes with a column of the same name; rename it, "
                f"e.g. df = df.rename_axis({label + '_index'!r}) (df.index.names = [...] for a "
                "MultiIndex), or pass keep_index=False"
            )
        level_names.append(label)
        values = index.get_level_values(i)
        index_cols.append((label, pd.Series(values, index=pd.RangeIndex(len(df)), name=label)))
    notes.append(f"index written as leading column(s): {', '.join(repr(n) for n, _ in index_cols)}")
    return index_cols


def _raw(s: pd.Series) -> Any:
    """The array behind a Series, so assignment does not align on the index."""
    return s.array if isinstance(s.dtype, ExtensionDtype) else s.to_numpy()
