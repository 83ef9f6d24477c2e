"""DataFrame → SBDF conversion: observable behaviour through spotfire.sbdf round trips."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import pathlib
import time

import numpy as np
import pandas as pd
import pendulum
import pyarrow as pa
import pytest
import spotfire
from spotfire import sbdf as spotfire_sbdf

from airflow_provider_spotfire import sbdf
from airflow_provider_spotfire.exceptions import SpotfireDataError
from airflow_provider_spotfire.sbdf import (
    SbdfWriteResult,
    assert_sbdf_file,
    is_sbdf_file,
    prepare_dataframe,
    read_sbdf,
    temporary_sbdf,
    write_sbdf,
)


def roundtrip(df: pd.DataFrame, tmp_path: pathlib.Path, **kwargs) -> tuple[pd.DataFrame, SbdfWriteResult]:
    result = write_sbdf(df, tmp_path / "out.sbdf", **kwargs)
    return spotfire_sbdf.import_data(result.path), result


def types_of(frame: pd.DataFrame) -> dict[str, str]:
    return {c: frame[c].attrs.get("spotfire_type") for c in frame.columns}


def ts(*values: str | None) -> pd.DatetimeIndex:
    return pd.to_datetime(list(values), format="ISO8601")


# ---- integers and floats -------------------------------------------------------------------------

INT_CASES = [
    # dtype, values, prepared dtype, SBDF type
    ("int8", [-128, 0, 127], "int32", "Integer"),
    ("int16", [-32768, 1, 32767], "int32", "Integer"),
    ("Int8", [1, None, -3], "Int32", "Integer"),
    ("Int16", [1, None, 300], "Int32", "Integer"),
    ("uint8", [0, 1, 255], "int32", "Integer"),
    ("uint16", [0, 1, 65535], "int32", "Integer"),
    ("UInt8", [0, None, 255], "Int32", "Integer"),
    ("UInt16", [0, None, 65535], "Int32", "Integer"),
    ("uint32", [0, 1, 2**32 - 1], "int64", "LongInteger"),
    ("UInt32", [0, None, 2**32 - 1], "Int64", "LongInteger"),
    ("uint64", [0, 1, 2**63 - 1], "int64", "LongInteger"),
    ("UInt64", [0, None, 2**63 - 1], "Int64", "LongInteger"),
]


@pytest.mark.parametrize(("dtype", "values", "prepared", "sbdf_type"), INT_CASES)
def test_integers_are_widened_to_an_sbdf_type(tmp_path, dtype, values, prepared, sbdf_type):
    df = pd.DataFrame({"a": pd.Series(values, dtype=dtype)})
    out, notes = prepare_dataframe(df)
    assert str(out["a"].dtype) == prepared
    assert notes == [f"column 'a': {dtype} → {prepared} (SBDF {sbdf_type})"]
    back, result = roundtrip(df, tmp_path)
    assert result.column_types == {"a": sbdf_type}
    assert types_of(back) == {"a": sbdf_type}
    assert back["a"].tolist() == pd.Series(values, dtype="Int64").tolist()


def test_supported_numbers_are_untouched_and_share_memory(tmp_path):
    df = pd.DataFrame(
        {
            "i32": np.arange(3, dtype="int32"),
            "i64": np.arange(3, dtype="int64"),
            "f32": np.ones(3, dtype="float32"),
            "f64": [0.5, np.nan, np.inf],
            "b": [True, False, True],
        }
    )
    out, notes = prepare_dataframe(df)
    assert notes == []
    for col in df.columns:
        assert out[col].dtype == df[col].dtype
        assert np.shares_memory(out[col].to_numpy(), df[col].to_numpy()), col
    back, result = roundtrip(df, tmp_path)
    assert result.column_types == {
        "i32": "Integer",
        "i64": "LongInteger",
        "f32": "SingleReal",
        "f64": "Real",
        "b": "Boolean",
    }
    assert back["f64"].tolist()[0] == 0.5 and np.isnan(back["f64"][1]) and back["f64"][2] == np.inf


def test_uint64_overflow_names_column_max_and_fix():
    df = pd.DataFrame({"big": np.array([1, 2**64 - 1], dtype="uint64")})
    with pytest.raises(SpotfireDataError) as err:
        prepare_dataframe(df)
    msg = str(err.value)
    assert "'big'" in msg and str(2**64 - 1) in msg and "float64" in msg and "string" in msg


def test_float16_becomes_single_real(tmp_path):
    df = pd.DataFrame({"h": np.array([1.5, -2.25, np.nan], dtype="float16")})
    back, result = roundtrip(df, tmp_path)
    assert "column 'h': float16 → float32 (SBDF SingleReal)" in result.notes
    assert types_of(back) == {"h": "SingleReal"}
    assert back["h"].dtype == "float32"
    assert back["h"][:2].tolist() == [1.5, -2.25] and np.isnan(back["h"][2])


def test_longdouble_becomes_real(tmp_path):
    df = pd.DataFrame({"x": np.array([1.25, np.nan], dtype=np.longdouble)})
    back, result = roundtrip(df, tmp_path)
    assert result.column_types == {"x": "Real"}
    assert back["x"][0] == 1.25 and np.isnan(back["x"][1])


# ---- categoricals, strings, pyarrow ---------------------------------------------------------------


def test_categoricals_are_written_as_their_values(tmp_path):
    df = pd.DataFrame(
        {
            "s": pd.Categorical(["x", None, "y"]),
            "n": pd.Series([1, None, 3]).astype(pd.CategoricalDtype(pd.Index([1, 3], dtype="int16"))),
        }
    )
    back, result = roundtrip(df, tmp_path)
    assert "column 's': category → object (the categories' values are written)" in result.notes
    assert "column 'n': category → Int16 (the categories' values are written)" in result.notes
    assert "column 'n': Int16 → Int32 (SBDF Integer)" in result.notes
    assert types_of(back) == {"s": "String", "n": "Integer"}
    assert back["s"].tolist() == ["x", None, "y"]
    assert back["n"].tolist() == [1, pd.NA, 3]


def test_nan_backed_string_dtype_becomes_string(tmp_path):
    df = pd.DataFrame({"s": pd.Series(["a", None], dtype=pd.StringDtype("python", na_value=np.nan))})
    back, result = roundtrip(df, tmp_path)
    assert "column 's': str[python] → string[python] (SBDF String)" in result.notes
    assert back["s"].tolist() == ["a", None]


def test_pyarrow_dtypes_become_numpy_or_pandas_dtypes(tmp_path):
    df = pd.DataFrame(
        {
            "i": pd.Series([1, None, 3], dtype="int16[pyarrow]"),
            "u": pd.Series([1, None, 3], dtype="uint64[pyarrow]"),
            "f": pd.Series([1.5, None, 3.0], dtype="double[pyarrow]"),
            "b": pd.Series([True, None, False], dtype="bool[pyarrow]"),
            "s": pd.Series(["a", None, "c"], dtype="string[pyarrow]"),
            "ls": pd.Series(["a", None, "c"], dtype=pd.ArrowDtype(pa.large_string())),
            "t": pd.Series(
                ts("2024-01-01 12:00", None, "2024-07-01 12:00").tz_localize("Europe/Stockholm")
            ).astype("timestamp[ms, tz=Europe/Stockholm][pyarrow]"),
            "d": pd.Series(
                [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)], dtype=pd.ArrowDtype(pa.date32())
            ),
        }
    )
    out, notes = prepare_dataframe(df)
    assert not any(isinstance(t, pd.ArrowDtype) for t in out.dtypes)
    assert "column 'i': int16[pyarrow] → Int16 (pyarrow-backed dtype converted)" in notes
    assert "column 's': string[pyarrow] → string[python] (SBDF String)" in notes
    back, result = roundtrip(df, tmp_path)
    assert result.column_types == {
        "i": "Integer",
        "u": "LongInteger",
        "f": "Real",
        "b": "Boolean",
        "s": "String",
        "ls": "String",
        "t": "DateTime",
        "d": "Date",
    }
    assert back["i"].tolist() == [1, pd.NA, 3]
    assert back["b"].tolist() == [True, None, False]
    assert back["s"].tolist() == back["ls"].tolist() == ["a", None, "c"]
    assert back["t"].tolist() == [dt.datetime(2024, 1, 1, 11), None, dt.datetime(2024, 7, 1, 10)]


# ---- object columns -------------------------------------------------------------------------------


def test_object_columns_of_one_python_type(tmp_path):
    df = pd.DataFrame(
        {
            "s": ["a", None, "c"],
            "i": pd.Series([1, None, 2**40], dtype=object),
            "b": pd.Series([True, None, False], dtype=object),
            "f": pd.Series([1.5, None, 2.5], dtype=object),
            "np16": pd.Series([np.int16(1), np.int16(2), np.int16(3)], dtype=object),
            "dec": [decimal.Decimal("1.25"), None, decimal.Decimal("-3")],
            "date": [dt.date(2024, 1, 1), None, dt.date(2024, 2, 29)],
            "bin": [b"\x00\x01", None, b""],
        }
    )
    back, result = roundtrip(df, tmp_path)
    assert "column 'i': object (int values) → Int64 (SBDF LongInteger)" in result.notes
    assert "column 'np16': object (numpy.int16 values) → int16" in result.notes
    assert result.column_types == {
        "s": "String",
        "i": "LongInteger",
        "b": "Boolean",
        "f": "Real",
        "np16": "Integer",
        "dec": "Currency",
        "date": "Date",
        "bin": "Binary",
    }
    assert types_of(back) == result.column_types
    assert back["i"].tolist() == [1, pd.NA, 2**40]
    assert back["b"].tolist() == [True, None, False]
    assert back["np16"].tolist() == [1, 2, 3]
    assert back["dec"].tolist() == [decimal.Decimal("1.25"), None, decimal.Decimal("-3")]
    assert back["date"].tolist() == [dt.date(2024, 1, 1), None, dt.date(2024, 2, 29)]
    assert back["bin"].tolist() == [b"\x00\x01", None, b""]


def test_object_subclasses_that_spotfire_rejects_are_normalised(tmp_path):
    df = pd.DataFrame(
        {
            "when": pd.Series([pendulum.datetime(2024, 1, 1, 12, tz="Europe/Stockholm"), None], dtype=object),
            "naive": pd.Series([pendulum.naive(2024, 1, 1, 12), dt.datetime(2024, 1, 2)], dtype=object),
            "day": pd.Series([pendulum.date(2024, 1, 1), dt.date(2024, 1, 2)], dtype=object),
            "span": pd.Series([pendulum.duration(seconds=3), None], dtype=object),
            "text": pd.Series([np.str_("a"), "b"], dtype=object),
        }
    )
    with pytest.raises(spotfire_sbdf.SBDFError):
        spotfire_sbdf.export_data(df[["day"]], str(tmp_path / "raw.sbdf"))
    back, result = roundtrip(df, tmp_path)
    assert result.column_types == {
        "when": "DateTime",
        "naive": "DateTime",
        "day": "Date",
        "span": "TimeSpan",
        "text": "String",
    }
    assert "column 'text': object (numpy.str_ values) → string[python] (SBDF String)" in result.notes
    assert back["when"].tolist() == [dt.datetime(2024, 1, 1, 11), None]
    assert back["naive"].tolist() == [dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 2)]
    assert back["day"].tolist() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    assert back["span"].tolist() == [dt.timedelta(seconds=3), None]
    assert back["text"].tolist() == ["a", "b"]


def test_mixed_type_object_column_names_column_types_and_fix():
    df = pd.DataFrame({"ok": [1, 2, 3], "mixed": ["a", 1, None]})
    with pytest.raises(SpotfireDataError) as err:
        prepare_dataframe(df)
    msg = str(err.value)
    assert "'mixed'" in msg and "(str, int)" in msg and "astype('string')" in msg


def test_object_integers_beyond_int64_are_rejected():
    df = pd.DataFrame({"huge": pd.Series([1, 2**70], dtype=object)})
    with pytest.raises(SpotfireDataError, match=r"'huge'.*1180591620717411303424.*float64"):
        prepare_dataframe(df)


def test_unsupported_values_and_dtypes_name_column_and_fix():
    with pytest.raises(SpotfireDataError, match=r"column 'd' holds dict values.*astype\('string'\)"):
        prepare_dataframe(pd.DataFrame({"d": [{"k": 1}, {"k": 2}]}))
    with pytest.raises(SpotfireDataError, match=r"column 'c' has dtype 'complex128'.*astype"):
        prepare_dataframe(pd.DataFrame({"c": np.array([1j, 2j])}))


# ---- all-null columns -----------------------------------------------------------------------------


def test_all_null_columns_are_typed_from_their_dtype(tmp_path):
    df = pd.DataFrame(
        {
            "f": [np.nan, np.nan],
            "i": pd.array([None, None], dtype="Int64"),
            "t": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]"),
            "s": pd.Series([None, None], dtype="string"),
            "b": pd.Series([None, None], dtype="boolean"),
        }
    )
    back, result = roundtrip(df, tmp_path)
    assert result.column_types == {
        "f": "Real",
        "i": "LongInteger",
        "t": "DateTime",
        "s": "String",
        "b": "Boolean",
    }
    assert types_of(back) == result.column_types
    assert "column 'f': all values are missing; written as SBDF Real from its dtype float64" in result.notes
    assert back.isna().all().all()


def test_all_none_object_column_is_rejected_with_fix():
    df = pd.DataFrame({"x": [1, 2], "empty": [None, None]})
    with pytest.raises(SpotfireDataError) as err:
        prepare_dataframe(df)
    msg = str(err.value)
    assert "'empty'" in msg and "df['empty'] = df['empty'].astype('string')" in msg


def test_all_none_object_column_with_a_spotfire_type_is_written(tmp_path):
    df = pd.DataFrame({"x": [1, 2], "empty": [None, None]})
    spotfire.set_spotfire_types(df, {"empty": "String", "x": "Integer"})
    back, result = roundtrip(df, tmp_path)
    assert result.column_types == {"x": "Integer", "empty": "String"}
    assert types_of(back) == {"x": "Integer", "empty": "String"}
    assert back["empty"].tolist() == [None, None]


# ---- date, time and time zones --------------------------------------------------------------------


@pytest.fixture
def new_york_local_time():
    """Run with a non-UTC local zone (spotfire's own export converts to the local zone)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def stockholm_frame() -> pd.DataFrame:
    when = ts("2024-01-15 12:00:00", None, "2024-07-15 12:00:00").tz_localize("Europe/Stockholm")
    return pd.DataFrame({"t": when})


def test_tz_aware_datetimes_are_converted_to_utc_by_default(tmp_path):
    back, result = roundtrip(stockholm_frame(), tmp_path)
    assert result.notes == [
        "column 't': datetime64[ns, Europe/Stockholm] converted to UTC and written without a zone "
        "(SBDF DateTime has no time zone)"
    ]
    assert back["t"].tolist() == [dt.datetime(2024, 1, 15, 11), None, dt.datetime(2024, 7, 15, 10)]


def test_tz_aware_datetimes_can_target_another_zone(tmp_path):
    df = pd.DataFrame({"t": ts("2024-01-15 11:00", "2024-07-15 10:00").tz_localize("UTC")})
    back, result = roundtrip(df, tmp_path, timezone="Europe/Stockholm")
    assert "converted to Europe/Stockholm" in result.notes[0]
    assert back["t"].tolist() == [dt.datetime(2024, 1, 15, 12), dt.datetime(2024, 7, 15, 12)]


def test_tz_conversion_does_not_depend_on_the_machine_zone(tmp_path, new_york_local_time):
    raw = str(tmp_path / "raw.sbdf")
    spotfire_sbdf.export_data(stockholm_frame(), raw)  # the package itself uses the local zone
    assert spotfire_sbdf.import_data(raw)["t"][0] == dt.datetime(2024, 1, 15, 6)
    back, _ = roundtrip(stockholm_frame(), tmp_path)
    assert back["t"][0] == dt.datetime(2024, 1, 15, 11)


def test_object_column_of_aware_datetimes_is_converted(tmp_path):
    df = pd.DataFrame(
        {
            "t": [
                dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                None,
                pd.Timestamp("2024-01-01 12:00", tz="UTC"),
            ]
        }
    )
    back, result = roundtrip(df, tmp_path)
    assert any("time-zone-aware datetimes converted to UTC" in n for n in result.notes)
    assert back["t"].tolist() == [dt.datetime(2024, 1, 1, 10), None, dt.datetime(2024, 1, 1, 12)]


def test_mixing_aware_and_naive_datetimes_is_rejected():
    df = pd.DataFrame({"t": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]})
    with pytest.raises(SpotfireDataError, match=r"'t' mixes time-zone-aware and naive.*utc=True"):
        prepare_dataframe(df)


def test_unknown_timezone_is_rejected():
    with pytest.raises(SpotfireDataError, match="unknown time zone 'Mars/Olympus'"):
        prepare_dataframe(pd.DataFrame({"a": [1]}), timezone="Mars/Olympus")


def test_naive_datetimes_are_written_as_is(tmp_path):
    df = pd.DataFrame({"t": ts("2024-03-31 02:30:00", None)})
    back, result = roundtrip(df, tmp_path, timezone="Europe/Stockholm")
    assert result.notes == ["column 't': naive datetime64[ns] written as-is (no time-zone conversion)"]
    assert back["t"].tolist() == [dt.datetime(2024, 3, 31, 2, 30), None]


def test_sub_millisecond_precision_is_truncated_with_a_note(tmp_path):
    df = pd.DataFrame(
        {
            "t": ts("2024-01-01 12:00:00.999999", "2024-01-01 12:00:00.123456789", None),
            "o": [dt.datetime(2024, 1, 1, 0, 0, 0, 999999), None, dt.datetime(2024, 1, 1)],
            "d": pd.to_timedelta(["1.9999ms", None, "-0.5ms"]),
            "ms": ts("2024-01-01 12:00:00.123", None, None),
        }
    )
    back, result = roundtrip(df, tmp_path)
    truncated = "sub-millisecond precision truncated to milliseconds (SBDF keeps ms)"
    assert f"column 't': {truncated}" in result.notes
    assert f"column 'o': {truncated}" in result.notes
    assert "column 'd': sub-millisecond precision floored to milliseconds (SBDF keeps ms)" in result.notes
    assert not any(n.startswith("column 'ms': sub-millisecond") for n in result.notes)
    # spotfire alone rounds .999999 up to the next second; truncation keeps the second.
    assert back["t"].tolist() == [
        dt.datetime(2024, 1, 1, 12, 0, 0, 999000),
        dt.datetime(2024, 1, 1, 12, 0, 0, 123000),
        None,
    ]
    assert back["o"][0] == dt.datetime(2024, 1, 1, 0, 0, 0, 999000)
    assert back["d"].tolist() == [dt.timedelta(milliseconds=1), None, dt.timedelta(milliseconds=-1)]
    assert back["ms"][0] == dt.datetime(2024, 1, 1, 12, 0, 0, 123000)


# ---- index ----------------------------------------------------------------------------------------


def test_index_is_dropped_by_default_with_a_note(tmp_path):
    df = pd.DataFrame({"a": [1, 2]}, index=["x", "y"])
    back, result = roundtrip(df, tmp_path)
    assert list(back.columns) == ["a"]
    assert any(n.startswith("index dropped") for n in result.notes)


def test_keep_index_unnamed(tmp_path):
    df = pd.DataFrame({"a": [1, 2]}, index=[10, 20])
    back, result = roundtrip(df, tmp_path, keep_index=True)
    assert list(back.columns) == ["index", "a"]
    assert back["index"].tolist() == [10, 20]
    assert result.column_types == {"index": "LongInteger", "a": "LongInteger"}


def test_keep_index_named_and_normalised(tmp_path):
    idx = pd.DatetimeIndex(ts("2024-01-15 12:00", "2024-01-16 12:00"), name="when").tz_localize(
        "Europe/Stockholm"
    )
    df = pd.DataFrame({"a": [1, 2]}, index=idx)
    back, result = roundtrip(df, tmp_path, keep_index=True)
    assert list(back.columns) == ["when", "a"]
    assert back["when"].tolist() == [dt.datetime(2024, 1, 15, 11), dt.datetime(2024, 1, 16, 11)]
    assert any(
        n.startswith("column 'when': datetime64[ns, Europe/Stockholm] converted") for n in result.notes
    )


def test_keep_index_multiindex(tmp_path):
    idx = pd.MultiIndex.from_tuples([("x", 1), ("y", 2)], names=["key", None])
    idx = idx.set_levels(idx.levels[1].astype("int16"), level=1)
    df = pd.DataFrame({"a": [1.5, 2.5]}, index=idx)
    back, result = roundtrip(df, tmp_path, keep_index=True)
    assert list(back.columns) == ["key", "level_1", "a"]
    assert back["key"].tolist() == ["x", "y"]
    assert back["level_1"].tolist() == [1, 2]
    assert result.column_types["level_1"] == "Integer"


def test_keep_index_name_clash_is_rejected():
    df = pd.DataFrame({"a": [1, 2]}, index=pd.Index([1, 2], name="a"))
    with pytest.raises(SpotfireDataError, match=r"index level 'a' clashes.*keep_index=False"):
        prepare_dataframe(df, keep_index=True)


# ---- column names and shape -----------------------------------------------------------------------


def test_duplicate_column_names_are_listed():
    df = pd.DataFrame([[1, 2, 3, 4]], columns=["a", "b", "a", "b"])
    with pytest.raises(SpotfireDataError, match="duplicate column names: 'a', 'b'"):
        prepare_dataframe(df)


def test_non_string_column_names_are_converted(tmp_path):
    df = pd.DataFrame([[1, 2.5]], columns=[0, ("x", 1)])
    back, result = roundtrip(df, tmp_path)
    assert list(back.columns) == ["0", "('x', 1)"]
    assert "column '0': name 0 (int) converted to str" in result.notes


def test_names_that_clash_after_str_conversion_are_rejected():
    with pytest.raises(SpotfireDataError, match="duplicate column names after converting"):
        prepare_dataframe(pd.DataFrame([[1, 2]], columns=[1, "1"]))


def test_empty_column_name_is_rejected():
    with pytest.raises(SpotfireDataError, match=r"position 1 has an empty name.*rename"):
        prepare_dataframe(pd.DataFrame([[1, 2]], columns=["a", ""]))


def test_zero_rows_are_allowed(tmp_path):
    df = pd.DataFrame(
        {
            "i": pd.Series([], dtype="int16"),
            "s": pd.Series([], dtype=object),
            "t": pd.Series([], dtype="datetime64[ns]"),
        }
    )
    back, result = roundtrip(df, tmp_path)
    assert len(back) == 0 and result.rows == 0
    assert result.column_types == {"i": "Integer", "s": "String", "t": "DateTime"}
    assert "column 's': no rows and dtype object; written as SBDF String" in result.notes


def test_zero_columns_are_rejected():
    with pytest.raises(SpotfireDataError, match="no columns"):
        prepare_dataframe(pd.DataFrame(index=range(3)))


def test_only_dataframes_are_accepted():
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        prepare_dataframe(pd.Series([1, 2]))  # type: ignore[arg-type]


# ---- input never mutated --------------------------------------------------------------------------


def test_input_frame_is_not_mutated(tmp_path):
    df = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype="int16"),
            "t": ts("2024-01-01 12:00:00.0001", None).tz_localize("Europe/Stockholm"),
            "o": np.array([1, None], dtype=object),
            "c": pd.Categorical(["a", "b"]),
            7: [1.0, 2.0],
        },
        index=pd.Index(["x", "y"], name="k"),
    )
    before = df.copy(deep=True)
    out, _ = prepare_dataframe(df, keep_index=True)
    write_sbdf(df, tmp_path / "a.sbdf", keep_index=True)
    with temporary_sbdf(df):
        pass
    out.iloc[0, 1] = 99  # writing to a converted column must not reach the input
    pd.testing.assert_frame_equal(df, before)
    assert list(df.columns) == ["i", "t", "o", "c", 7]
    assert df.index.name == "k"


# ---- writing --------------------------------------------------------------------------------------


def test_write_sbdf_result(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    target = tmp_path / "data.sbdf"
    result = write_sbdf(df, target)  # os.PathLike is accepted
    assert isinstance(result.path, str) and result.path == str(target)
    assert (result.rows, result.columns) == (3, 2)
    assert result.bytes == target.stat().st_size > 0
    assert result.column_types == {"a": "LongInteger", "b": "String"}
    assert result.to_dict()["column_types"] == {"a": "LongInteger", "b": "String"}
    pd.testing.assert_frame_equal(read_sbdf(target), spotfire_sbdf.import_data(str(target)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.sbdf"]


def failing_batches(message: str):
    """A source that writes one batch, then fails mid-stream."""
    yield pd.DataFrame({"a": [2]})
    raise RuntimeError(message)


def test_failed_write_keeps_the_existing_file(tmp_path):
    target = tmp_path / "data.sbdf"
    write_sbdf(pd.DataFrame({"a": [1]}), target)
    original = target.read_bytes()
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_sbdf(failing_batches("disk on fire"), target)
    assert target.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.sbdf"]


def test_temporary_sbdf_is_removed_after_success(tmp_path):
    df = pd.DataFrame({"a": [1, 2]})
    with temporary_sbdf(df, dir=tmp_path) as result:
        path = pathlib.Path(result.path)
        assert path.parent == tmp_path and path.suffix == ".sbdf"
        assert is_sbdf_file(path) and result.bytes == path.stat().st_size
        assert read_sbdf(path)["a"].tolist() == [1, 2]
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_temporary_sbdf_is_removed_when_the_body_fails(tmp_path):
    with pytest.raises(RuntimeError), temporary_sbdf(pd.DataFrame({"a": [1]}), dir=tmp_path) as result:
        assert os.path.exists(result.path)
        raise RuntimeError("upload failed")
    assert list(tmp_path.iterdir()) == []


def test_temporary_sbdf_is_removed_when_the_write_fails(tmp_path):
    with (
        pytest.raises(RuntimeError, match="boom"),
        temporary_sbdf(failing_batches("boom"), dir=tmp_path),
    ):
        pytest.fail("the body must not run")
    assert list(tmp_path.iterdir()) == []


def test_temporary_sbdf_creates_nothing_when_preparation_fails(tmp_path):
    with pytest.raises(SpotfireDataError), temporary_sbdf(pd.DataFrame({"x": [None]}), dir=tmp_path):
        pytest.fail("the body must not run")
    assert list(tmp_path.iterdir()) == []


# ---- file detection -------------------------------------------------------------------------------


def test_is_sbdf_file(tmp_path):
    good = tmp_path / "a.sbdf"
    spotfire_sbdf.export_data(pd.DataFrame({"a": [1]}), str(good))
    assert good.read_bytes()[:3] == sbdf.SBDF_MAGIC
    csv = tmp_path / "a.csv"
    csv.write_text("a,b\n1,2\n")
    empty = tmp_path / "empty.sbdf"
    empty.touch()
    assert is_sbdf_file(good) and is_sbdf_file(str(good))
    assert not is_sbdf_file(csv)
    assert not is_sbdf_file(empty)
    assert not is_sbdf_file(tmp_path / "missing.sbdf")
    assert not is_sbdf_file(tmp_path)
    assert_sbdf_file(good)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("a.csv", b"a,b\n1,2\n", "it starts with b'a,b\\n1,2\\n'"),
        ("empty.sbdf", b"", "it is empty"),
        ("missing.sbdf", None, "it does not exist"),
    ],
)
def test_assert_sbdf_file_explains(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    fix = "export it with spotfire.sbdf.export_data or pass a DataFrame"
    with pytest.raises(SpotfireDataError) as err:
        assert_sbdf_file(path)
    assert str(err.value).startswith(f"{str(path)!r} is not an SBDF file ({reason}")
    assert str(err.value).endswith(fix)
    with pytest.raises(SpotfireDataError, match="is not an SBDF file"):
        read_sbdf(path)
