"""Our SBDF writer: the bytes it writes (against export_data and the format), metadata, Arrow and
polars sources, and its errors. The ``spotfire`` package is the reference reader throughout."""

from __future__ import annotations

import datetime as dt
import decimal
import pathlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from spotfire import sbdf as spotfire_sbdf

from airflow_provider_spotfire.exceptions import SpotfireDataError
from airflow_provider_spotfire.sbdf import (
    SBDF_MAGIC,
    default_slice_rows,
    iter_sbdf_bytes,
    prepare_dataframe,
)
from airflow_provider_spotfire.sbdf._format import pack_varint_prefixed, varint_sizes


def export_data_bytes(df: pd.DataFrame, tmp_path: pathlib.Path, **kwargs) -> bytes:
    """What spotfire's export_data writes for the normalised frame, with plain encodings."""
    ready, _ = prepare_dataframe(df)
    path = tmp_path / "reference.sbdf"
    spotfire_sbdf.export_data(ready, str(path), encoding_rle=False, **kwargs)
    return path.read_bytes()


def our_bytes(source, **kwargs) -> bytes:
    return b"".join(iter_sbdf_bytes(source, **kwargs))


def read_bytes(data: bytes, tmp_path: pathlib.Path) -> pd.DataFrame:
    path = tmp_path / "ours.sbdf"
    path.write_bytes(data)
    return spotfire_sbdf.import_data(str(path))


def every_type_frame(rows: int) -> pd.DataFrame:
    """One column per SBDF type (Currency aside), a missing value every 7th row."""
    gaps = np.arange(rows) % 7 == 3
    base = np.arange(rows)
    ts = np.datetime64("2024-01-01T00:00:00", "ms") + (base * 3_600_123).astype("timedelta64[ms]")
    frame = pd.DataFrame(
        {
            "bool": pd.array(np.where(gaps, None, base % 2 == 0), dtype="boolean"),
            "int32": pd.array(np.where(gaps, None, base - 5), dtype="Int32"),
            "int64": pd.array(np.where(gaps, None, base * 2**40), dtype="Int64"),
            "float32": np.where(gaps, np.nan, base / 4).astype("float32"),
            "float64": np.where(gaps, np.nan, base / 3),
            "datetime": pd.Series(ts).mask(gaps),
            "date": pd.Series([dt.date(2024, 1, 1) + dt.timedelta(days=int(i)) for i in base]).mask(gaps),
            "time": pd.Series(
                [dt.time(int(i) % 24, int(i) % 60, 0, 1000 * (int(i) % 1000)) for i in base]
            ).mask(gaps),
            "timespan": pd.Series((base * 1234).astype("timedelta64[ms]")).mask(gaps),
            "string": pd.Series([f"välue-{i}-😀" * (i % 3) for i in base], dtype=object).mask(gaps),
            "binary": pd.Series([bytes([i % 256]) * (i % 5) for i in base], dtype=object).mask(gaps),
        }
    )
    return frame.astype({"date": object, "time": object, "string": object, "binary": object})


# ---- bytes equal export_data's where the encodings match -------------------------------------------


@pytest.mark.parametrize("column", list(every_type_frame(1).columns))
def test_each_type_is_byte_identical_to_export_data(tmp_path, column):
    df = every_type_frame(50)[[column]]
    assert our_bytes(df) == export_data_bytes(df, tmp_path)


def test_many_slices_are_byte_identical_to_export_data(tmp_path):
    df = every_type_frame(700)  # 11 columns: 9090 rows per slice by default; force 7 rows per slice
    assert our_bytes(df, slice_rows=7) == export_data_bytes(df, tmp_path, rows_per_slice=7)
    assert default_slice_rows(11) == 9090


def test_frames_without_missing_values_are_byte_identical(tmp_path):
    df = every_type_frame(100).dropna().reset_index(drop=True)
    assert our_bytes(df, slice_rows=13) == export_data_bytes(df, tmp_path, rows_per_slice=13)


def test_is_invalid_is_written_only_for_slices_with_missing_values(tmp_path):
    df = pd.DataFrame({"x": pd.array([1, 2, None, 4, 5, 6], dtype="Int64")})
    data = our_bytes(df, slice_rows=2)
    assert data.count(b"IsInvalid") == 1  # export_data writes it in every slice of such a column
    assert read_bytes(data, tmp_path)["x"].tolist() == [1, 2, pd.NA, 4, 5, 6]


def test_file_layout(tmp_path):
    data = our_bytes(pd.DataFrame({"a": [1, 2, 3]}), slice_rows=2)
    assert data.startswith(SBDF_MAGIC + b"\x01\x00")  # header section, version 1.0
    assert data[5:8] == b"\xdf\x5b\x02"  # table metadata follows
    assert data.count(b"\xdf\x5b\x03") == 2  # two table slices
    assert data.endswith(b"\xdf\x5b\x05")  # end of table


def test_pieces_are_header_slices_and_end(tmp_path):
    pieces = list(iter_sbdf_bytes(pd.DataFrame({"a": np.arange(10)}), slice_rows=4))
    assert len(pieces) == 1 + 3 + 1
    assert pieces[0].startswith(SBDF_MAGIC) and all(p.startswith(b"\xdf\x5b\x03") for p in pieces[1:4])
    assert pieces[-1] == b"\xdf\x5b\x05"


# ---- strings: varint prefixes --------------------------------------------------------------------


def reference_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_varint_prefixes_at_every_width_boundary():
    lengths = [0, 1, 127, 128, 129, 16383, 16384, 2**21 - 1, 2**21, 5]
    values = [bytes([i % 251 + 1]) * n for i, n in enumerate(lengths)]
    packed = pack_varint_prefixed(np.array(lengths), np.frombuffer(b"".join(values), np.uint8))
    assert packed.tobytes() == b"".join(reference_varint(len(v)) + v for v in values)
    widths = [2**28 - 1, 2**28, 2**31 - 1]  # the 5-byte prefix, without allocating the values
    assert varint_sizes(np.array(widths)).tolist() == [len(reference_varint(n)) for n in widths] == [4, 5, 5]


def test_long_strings_read_back(tmp_path):
    texts = ["x" * 127, "é" * 64, "y" * 128, "z" * 16384, "😀" * 5000, "", None]
    back = read_bytes(our_bytes(pd.DataFrame({"s": texts})), tmp_path)
    assert back["s"].tolist() == texts


def test_sliced_arrow_strings_with_null_bytes_behind_nulls(tmp_path):
    # Arrow lets a null own bytes; SBDF writes an empty value there.
    arr = pa.array(["keep", "drop-me", "tail"])
    masked = pa.Array.from_buffers(pa.string(), 3, [pa.py_buffer(b"\x05"), *arr.buffers()[1:]])
    table = pa.table({"s": masked.slice(1)})
    assert read_bytes(our_bytes(table), tmp_path)["s"].tolist() == [None, "tail"]


# ---- Currency --------------------------------------------------------------------------------------


def test_decimals_read_back_equal(tmp_path):
    values = [
        decimal.Decimal("1.25"),
        None,
        decimal.Decimal("-3"),
        decimal.Decimal("-0.01"),
        decimal.Decimal(0),
    ]
    df = pd.DataFrame({"d": pd.Series(values, dtype=object)})
    back = read_bytes(our_bytes(df), tmp_path)
    assert back["d"].attrs["spotfire_type"] == "Currency"
    assert back["d"].tolist() == values
    # One scale per column (Arrow's): -3 is written as -300E-2 where export_data writes -3E0.
    assert str(back["d"][2]) == "-3.00"


def test_decimals_beyond_96_bits_name_the_column():
    big = decimal.Decimal(10**29)
    with pytest.raises(SpotfireDataError, match=r"column 'd' holds decimals with more than 28"):
        our_bytes(pd.DataFrame({"d": pd.Series([big], dtype=object)}))


def test_non_finite_decimals_name_the_column():
    with pytest.raises(SpotfireDataError, match=r"column 'd' cannot be written as SBDF Currency"):
        our_bytes(pd.DataFrame({"d": pd.Series([decimal.Decimal("Infinity")], dtype=object)}))


# ---- metadata ------------------------------------------------------------------------------------


def test_table_and_column_metadata_round_trip(tmp_path):
    table_md = {
        "text": "hello ✓",
        "flag": True,
        "count": 3,
        "ratio": 0.5,
        "raw": b"\x00\x01",
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, 6000),
        "day": dt.date(2024, 2, 29),
        "at": dt.time(12, 30, 1, 500000),
        "span": dt.timedelta(hours=1, milliseconds=5),
        "money": decimal.Decimal("12.34"),
    }
    column_md = {"a": {"Description": "first", "Weight": 2}, "b": {"Description": "second"}}
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    back = read_bytes(our_bytes(df, table_metadata=table_md, column_metadata=column_md), tmp_path)
    assert back.spotfire_table_metadata == {k: [v] for k, v in table_md.items()}
    assert back["a"].spotfire_column_metadata == {"Description": ["first"], "Weight": [2]}
    assert back["b"].spotfire_column_metadata == {"Description": ["second"]}
    assert back["a"].tolist() == [1, 2]


def test_metadata_errors_are_raised_before_reading_the_source():
    consumed = []

    def source():
        consumed.append(True)
        yield pd.DataFrame({"a": [1]})

    with pytest.raises(SpotfireDataError, match=r"table metadata 'obj' is a object"):
        iter_sbdf_bytes(source(), table_metadata={"obj": object()})
    with pytest.raises(SpotfireDataError, match=r"time-zone-aware datetime"):
        iter_sbdf_bytes(source(), table_metadata={"t": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)})
    assert consumed == []


@pytest.mark.parametrize(
    ("column_md", "match"),
    [
        ({"nope": {"x": 1}}, r"column_metadata names columns the table does not have: 'nope'"),
        ({"a": {"Name": "other"}}, r"sets 'Name', which the writer sets from the column itself"),
        ({"a": {"k": 1}, "b": {"k": "text"}}, r"column metadata 'k' has different value types"),
    ],
)
def test_column_metadata_errors(column_md, match):
    with pytest.raises(SpotfireDataError, match=match):
        our_bytes(pd.DataFrame({"a": [1], "b": [2]}), column_metadata=column_md)


# ---- Arrow and polars sources ----------------------------------------------------------------------


def test_arrow_types_are_normalised(tmp_path):
    stockholm = pa.array([dt.datetime(2024, 1, 15, 11), None], type=pa.timestamp("us", tz="UTC")).cast(
        pa.timestamp("us", tz="Europe/Stockholm")
    )
    table = pa.table(
        {
            "i8": pa.array([-128, None], pa.int8()),
            "u32": pa.array([2**32 - 1, 0], pa.uint32()),
            "u64": pa.array([2**63 - 1, None], pa.uint64()),
            "f16": pa.array([np.float16(1.5), None], pa.float16()),
            "dict": pa.array(["a", "b"]).dictionary_encode(),
            "view": pa.array(["v", None], pa.string_view()),
            "lbin": pa.array([b"\x00", None], pa.large_binary()),
            "fbin": pa.array([b"ab", b"cd"], pa.binary(2)),
            "tz": stockholm,
            "d64": pa.array([dt.date(2024, 1, 1), None], pa.date64()),
            "t32": pa.array([dt.time(1, 2, 3), None], pa.time32("s")),
            "t64": pa.array([dt.time(1, 2, 3, 456789), None], pa.time64("ns")),
            "dur": pa.array([1_500_000, None], pa.duration("us")),
            "dec": pa.array([decimal.Decimal("-1.5"), None], pa.decimal128(5, 1)),
            "nan": pa.array([float("nan"), None], pa.float64()),
        }
    )
    stream = iter_sbdf_bytes(table)
    back = read_bytes(b"".join(stream), tmp_path)
    assert stream.column_types == {
        "i8": "Integer",
        "u32": "LongInteger",
        "u64": "LongInteger",
        "f16": "SingleReal",
        "dict": "String",
        "view": "String",
        "lbin": "Binary",
        "fbin": "Binary",
        "tz": "DateTime",
        "d64": "Date",
        "t32": "Time",
        "t64": "Time",
        "dur": "TimeSpan",
        "dec": "Currency",
        "nan": "Real",
    }
    assert back["i8"].tolist() == [-128, pd.NA]
    assert back["u64"].tolist() == [2**63 - 1, pd.NA]
    assert back["dict"].tolist() == ["a", "b"]
    assert back["view"].tolist() == ["v", None]
    assert back["fbin"].tolist() == [b"ab", b"cd"]
    assert back["tz"].tolist() == [dt.datetime(2024, 1, 15, 11), None]
    assert back["d64"].tolist() == [dt.date(2024, 1, 1), None]
    assert back["t64"].tolist() == [dt.time(1, 2, 3, 456000), None]
    assert back["dur"].tolist() == [dt.timedelta(milliseconds=1500), None]
    assert back["dec"].tolist() == [decimal.Decimal("-1.5"), None]
    assert np.isnan(back["nan"][0]) and np.isnan(back["nan"][1])
    assert "column 'i8': int8 → int32 (SBDF Integer)" in stream.notes
    assert any(
        n.startswith("column 'tz': timestamp[us, tz=Europe/Stockholm] converted to UTC") for n in stream.notes
    )
    assert "column 't64': sub-millisecond precision truncated to milliseconds (SBDF keeps ms)" in stream.notes


def test_arrow_time_zone_target(tmp_path):
    table = pa.table({"t": pa.array([dt.datetime(2024, 7, 1, 10)], pa.timestamp("ms", tz="UTC"))})
    back = read_bytes(our_bytes(table, time_zone="Europe/Stockholm"), tmp_path)
    assert back["t"].tolist() == [dt.datetime(2024, 7, 1, 12)]


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (pa.nulls(2), r"column 'x' has Arrow type null .* cannot be determined"),
        (pa.array([2**64 - 1], pa.uint64()), r"column 'x' \(uint64\) holds 18446744073709551615"),
        (pa.array([[1, 2]]), r"column 'x' has Arrow type list<item: int64>, which SBDF cannot store"),
        (pa.array([-(10**12)], pa.timestamp("s")), r"column 'x' holds DateTime values outside 0001-01-01"),
        (pa.array([10**7], pa.date32()), r"column 'x' holds Date values outside"),
    ],
)
def test_arrow_columns_sbdf_cannot_hold_name_the_column(array, match):
    with pytest.raises(SpotfireDataError, match=match):
        our_bytes(pa.table({"x": array}))


def test_polars_dataframe(tmp_path):
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(
        {
            "n": [1, None, 3],
            "s": ["a", None, "ç"],
            "t": [dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 3)],
            "c": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
        }
    )
    stream = iter_sbdf_bytes(df)
    back = read_bytes(b"".join(stream), tmp_path)
    assert stream.column_types == {"n": "LongInteger", "s": "String", "t": "DateTime", "c": "String"}
    assert back["n"].tolist() == [1, pd.NA, 3]
    assert back["s"].tolist() == ["a", None, "ç"]
    assert back["t"].tolist() == [dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 3)]
    assert back["c"].tolist() == ["x", "y", "x"]


def test_pyarrow_backed_pandas_strings_are_read_from_their_buffers(tmp_path):
    df = pd.DataFrame({"s": pd.Series(["a", None, "😀"], dtype="string[pyarrow]")})
    stream = iter_sbdf_bytes(df)
    back = read_bytes(b"".join(stream), tmp_path)
    assert back["s"].tolist() == ["a", None, "😀"]
    assert stream.notes == []  # no conversion to Python strings


# ---- errors ----------------------------------------------------------------------------------------


def test_unencodable_text_names_the_column():
    with pytest.raises(SpotfireDataError, match=r"column 's' cannot be written as SBDF String"):
        our_bytes(pd.DataFrame({"s": ["ok", "\ud800"]}))


def test_out_of_range_pandas_dates_name_the_column():
    df = pd.DataFrame({"t": np.array(["-0001-01-01"], dtype="datetime64[s]")})
    with pytest.raises(SpotfireDataError, match=r"column 't' holds DateTime values outside"):
        our_bytes(df)


def test_not_a_table_source_is_a_type_error():
    with pytest.raises(TypeError, match="expected a pandas DataFrame, an iterable of DataFrames"):
        iter_sbdf_bytes(pd.Series([1, 2]))
    with pytest.raises(TypeError, match="got str"):
        iter_sbdf_bytes("/tmp/file.sbdf")


def test_user_spotfire_types_convert_the_values(tmp_path):
    import spotfire

    df = pd.DataFrame({"n": [1, 2], "s": [1, 2], "e": [None, None]})
    spotfire.set_spotfire_types(df, {"n": "Real", "s": "String", "e": "Date"})
    stream = iter_sbdf_bytes(df)
    back = read_bytes(b"".join(stream), tmp_path)
    assert stream.column_types == {"n": "Real", "s": "String", "e": "Date"}
    assert back["n"].tolist() == [1.0, 2.0]
    assert back["s"].tolist() == ["1", "2"]
    assert back["e"].tolist() == [None, None]


def test_write_sbdf_takes_any_table_source_and_metadata(tmp_path):
    from airflow_provider_spotfire.sbdf import read_sbdf, temporary_sbdf, write_sbdf

    table = pa.table({"a": pa.array([1, None], pa.int16()), "b": ["x", "y"]})
    result = write_sbdf(table, tmp_path / "t.sbdf", table_metadata={"Source": "warehouse"})
    assert (result.rows, result.columns, result.column_types) == (2, 2, {"a": "Integer", "b": "String"})
    back = read_sbdf(result.path)
    assert back["a"].tolist() == [1, pd.NA] and back.spotfire_table_metadata == {"Source": ["warehouse"]}
    with temporary_sbdf(
        iter(table.to_batches()), dir=tmp_path, column_metadata={"b": {"Unit": "none"}}
    ) as tmp:
        assert read_sbdf(tmp.path)["b"].spotfire_column_metadata == {"Unit": ["none"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.sbdf"]
