"""iter_sbdf_bytes: batches → one SBDF file as bytes pieces; schema changes; bounded slices."""

from __future__ import annotations

import datetime as dt
import pathlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from spotfire import sbdf as spotfire_sbdf

from airflow_provider_spotfire.exceptions import SbdfSchemaError, SpotfireDataError
from airflow_provider_spotfire.sbdf import is_table_source, iter_sbdf_bytes, write_sbdf


def read_pieces(pieces, tmp_path: pathlib.Path, name: str = "stream.sbdf") -> pd.DataFrame:
    path = tmp_path / name
    path.write_bytes(b"".join(pieces))
    return spotfire_sbdf.import_data(str(path))


def sample(rows: int, start: int = 0) -> pd.DataFrame:
    n = np.arange(start, start + rows)
    return pd.DataFrame(
        {
            "id": n,
            "score": np.where(n % 5 == 0, np.nan, n / 2),
            "name": pd.Series([f"name-{i}" if i % 7 else None for i in n], dtype=object),
            "when": pd.Series(np.datetime64("2024-01-01", "ms") + n.astype("timedelta64[s]")),
            "flag": n % 3 == 0,
        }
    )


def batches_of(df: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [df.iloc[i : i + size].reset_index(drop=True) for i in range(0, len(df), size)]


# ---- batches are one file --------------------------------------------------------------------------


def test_batches_equal_the_whole_table_written_at_once(tmp_path):
    whole = sample(1000)
    # Batches aligned with slices: byte for byte the same file as writing the whole frame.
    streamed = b"".join(iter_sbdf_bytes(iter(batches_of(whole, 100)), slice_rows=100))
    at_once = b"".join(iter_sbdf_bytes(whole, slice_rows=100))
    assert streamed == at_once
    # Unaligned batches: other slice boundaries, same table.
    unaligned = read_pieces(iter_sbdf_bytes(batches_of(whole, 333)), tmp_path, "unaligned.sbdf")
    written = write_sbdf(whole, tmp_path / "whole.sbdf")
    pd.testing.assert_frame_equal(unaligned, spotfire_sbdf.import_data(written.path))
    assert len(unaligned) == 1000


@pytest.mark.parametrize("kind", ["table", "reader", "batch_list", "batch_iter", "tables"])
def test_arrow_sources(tmp_path, kind):
    whole = pa.Table.from_pandas(sample(250), preserve_index=False)
    batches = whole.to_batches(max_chunksize=60)
    source = {
        "table": pa.Table.from_batches(batches),  # several chunks
        "reader": pa.RecordBatchReader.from_batches(whole.schema, batches),
        "batch_list": batches,
        "batch_iter": iter(batches),
        "tables": iter([whole.slice(0, 100), whole.slice(100)]),
    }[kind]
    assert is_table_source(source)
    stream = iter_sbdf_bytes(source)
    back = read_pieces(stream, tmp_path)
    expected = spotfire_sbdf.import_data(write_sbdf(sample(250), tmp_path / "ref.sbdf").path)
    pd.testing.assert_frame_equal(back, expected)
    assert stream.rows == 250


def test_stream_statistics_and_deduplicated_notes(tmp_path):
    frames = [sample(10).astype({"id": "int16"}), sample(10, 10).astype({"id": "int16"})]
    stream = iter_sbdf_bytes(iter(frames))
    data = b"".join(stream)
    assert (stream.rows, stream.batches, stream.bytes) == (20, 2, len(data))
    assert stream.notes.count("column 'id': int16 → int32 (SBDF Integer)") == 1
    assert stream.column_types["id"] == "Integer"


def test_zero_row_batches_and_one_row_slices(tmp_path):
    frames = [sample(0), sample(3), sample(0), sample(2, 3)]
    pieces = list(iter_sbdf_bytes(iter(frames), slice_rows=1))
    assert len(pieces) == 1 + 5 + 1  # header, one slice per row, end
    assert read_pieces(pieces, tmp_path)["id"].tolist() == [0, 1, 2, 3, 4]


def test_an_empty_table_keeps_its_columns(tmp_path):
    for source in (sample(0), pa.Table.from_pandas(sample(5), preserve_index=False).slice(0, 0)):
        pieces = list(iter_sbdf_bytes(source))
        assert len(pieces) == 2  # header + metadata, end
        back = read_pieces(pieces, tmp_path)
        assert list(back.columns) == ["id", "score", "name", "when", "flag"] and len(back) == 0


def test_empty_reader_keeps_its_schema(tmp_path):
    schema = pa.schema([("a", pa.int32()), ("b", pa.string())])
    back = read_pieces(iter_sbdf_bytes(pa.RecordBatchReader.from_batches(schema, [])), tmp_path)
    assert list(back.columns) == ["a", "b"]
    assert [back[c].attrs["spotfire_type"] for c in back] == ["Integer", "String"]


def test_a_source_without_batches_is_an_error():
    with pytest.raises(SpotfireDataError, match="the source produced no batches"):
        b"".join(iter_sbdf_bytes(iter([])))


def test_first_batch_all_null_is_typed_from_its_dtype_and_later_all_none_batches_follow(tmp_path):
    first = pd.DataFrame(
        {"x": pd.Series([None, None], dtype="float64"), "s": pd.Series([None], dtype="string")[:2]}
    )
    first = pd.DataFrame({"x": [np.nan, np.nan], "s": pd.Series([None, None], dtype="string")})
    later = pd.DataFrame({"x": [1.5, None], "s": pd.Series([None, None], dtype=object)})
    stream = iter_sbdf_bytes(iter([first, later]))
    back = read_pieces(stream, tmp_path)
    assert stream.column_types == {"x": "Real", "s": "String"}
    assert back["x"].tolist()[2] == 1.5 and back["s"].isna().all()


# ---- schema changes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "column", "match"),
    [
        (
            pd.DataFrame({"a": [1], "c": ["x"]}),
            "c",
            r"batch 2: column 'c' breaks the schema: at position 1 it has 'c'",
        ),
        (pd.DataFrame({"b": ["x"], "a": [1]}), "b", r"batch 2: column 'b' breaks the schema: at position 0"),
        (pd.DataFrame({"a": [1]}), "b", r"at position 1 it has nothing, the first batch had 'b'"),
        (
            pd.DataFrame({"a": [1], "b": ["x"], "z": [0]}),
            "z",
            r"it has 'z', the first batch had no more columns",
        ),
        (
            pd.DataFrame({"a": [1.5], "b": ["x"]}),
            "a",
            r"batch 2: column 'a' is SBDF Real but the first batch made it",
        ),
        (pd.DataFrame({"a": np.array([1], "int32"), "b": ["x"]}), "a", r"is SBDF Integer but .* LongInteger"),
    ],
)
def test_a_schema_change_is_one_error_naming_column_and_batch(second, column, match):
    produced = []

    def source():
        yield pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        yield second
        produced.append("third")  # never reached
        yield pd.DataFrame({"a": [3], "b": ["z"]})

    stream = iter_sbdf_bytes(source())
    pieces = [next(stream), next(stream)]  # header, the first batch's slice
    with pytest.raises(SbdfSchemaError, match=match) as err:
        next(stream)
    assert isinstance(err.value, SpotfireDataError)
    assert (err.value.column, err.value.batch) == (column, 2)
    assert str(err.value).endswith("(what was written is incomplete: an upload is cancelled)")
    assert produced == []
    with pytest.raises(StopIteration):
        next(stream)
    assert len(pieces) == 2


def test_an_arrow_schema_change_is_detected():
    first = pa.record_batch({"a": pa.array([1], pa.int64())})
    second = pa.record_batch({"a": pa.array(["1"])})
    with pytest.raises(
        SbdfSchemaError,
        match=r"batch 2: column 'a' is SBDF String but the first batch made it SBDF LongInteger",
    ):
        b"".join(iter_sbdf_bytes([first, second]))


def test_mixing_batch_kinds_names_the_batch():
    with pytest.raises(SpotfireDataError, match=r"batch 2 of the source is a dict"):
        b"".join(iter_sbdf_bytes(iter([pd.DataFrame({"a": [1]}), {"a": [2]}])))


def test_a_failing_source_propagates_its_error():
    def source():
        yield pd.DataFrame({"a": [1]})
        raise ConnectionError("database went away")

    stream = iter_sbdf_bytes(source())
    with pytest.raises(ConnectionError, match="database went away"):
        list(stream)


def test_closing_the_stream_closes_the_source():
    closed = []

    def source():
        try:
            yield pd.DataFrame({"a": [1]})
            yield pd.DataFrame({"a": [2]})
        finally:
            closed.append(True)

    stream = iter_sbdf_bytes(source())
    next(stream)
    stream.close()
    assert closed == [True]


# ---- bounded slices ----------------------------------------------------------------------------------


def test_slices_are_bounded_by_bytes(tmp_path):
    texts = pd.Series(["x" * 1000] * 200 + ["y" * 50_000] + ["z"] * 10, dtype=object)
    df = pd.DataFrame({"s": texts, "n": np.arange(len(texts))})
    pieces = list(iter_sbdf_bytes(df, slice_bytes=20_000))
    slices = pieces[1:-1]
    assert all(len(p) < 20_000 + 2_000 for p in slices if b"y" * 50_000 not in p)
    assert sum(b"y" * 50_000 in p for p in slices) == 1  # a row bigger than the bound: its own slice
    assert len(slices) >= 200 * 1000 // 20_000
    back = read_pieces(pieces, tmp_path)
    assert back["s"].tolist() == texts.tolist() and back["n"].tolist() == list(range(len(texts)))


def test_a_big_batch_is_cut_into_bounded_pieces():
    df = pd.DataFrame({c: np.arange(200_000, dtype="int64") for c in "abcdefgh"})
    sizes = [len(p) for p in iter_sbdf_bytes(df)]
    assert len(sizes) == 2 + 200_000 // 12_500
    assert max(sizes[1:-1]) < 12_500 * 8 * 8 + 1_000  # 12,500 rows x 8 int64 columns per slice


# ---- arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"slice_rows": 0}, SpotfireDataError, "slice_rows must be a positive integer, got 0"),
        ({"slice_bytes": -1}, SpotfireDataError, "slice_bytes must be a positive integer"),
        ({"time_zone": "Mars/Olympus"}, SpotfireDataError, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_arguments_fail_before_the_source_is_read(kwargs, error, match):
    consumed = []

    def source():
        consumed.append(True)
        yield pd.DataFrame({"a": [1]})

    with pytest.raises(error, match=match):
        iter_sbdf_bytes(source(), **kwargs)
    assert consumed == []


def test_is_table_source():
    pl = pytest.importorskip("polars")
    table = pa.table({"a": [1]})
    yes = [
        pd.DataFrame({"a": [1]}),
        table,
        table.to_batches()[0],
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
        pl.DataFrame({"a": [1]}),
        [pd.DataFrame({"a": [1]})],
        (b for b in table.to_batches()),
    ]
    no = [
        "/tmp/x.sbdf",
        pathlib.Path("/tmp/x.sbdf"),
        b"\xdf\x5b",
        {"a": [1]},
        [],
        [1, 2],
        pd.Series([1]),
        3,
        None,
    ]
    assert all(is_table_source(x) for x in yes)
    assert not any(is_table_source(x) for x in no)


def test_keep_index_applies_to_every_batch(tmp_path):
    frames = [
        pd.DataFrame({"a": [1]}, index=pd.Index([dt.date(2024, 1, 1)], name="day")),
        pd.DataFrame({"a": [2]}, index=pd.Index([dt.date(2024, 1, 2)], name="day")),
    ]
    back = read_pieces(iter_sbdf_bytes(iter(frames), keep_index=True), tmp_path)
    assert back["day"].tolist() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]


def test_zero_row_batches_do_not_fix_the_schema(tmp_path):
    empty = pd.DataFrame({"d": pd.Series([], dtype=object)})  # an empty object column says nothing
    dates = pd.DataFrame({"d": [dt.date(2024, 1, 1), None]})
    stream = iter_sbdf_bytes(iter([empty, dates, empty, dates]))
    back = read_pieces(stream, tmp_path)
    assert stream.column_types == {"d": "Date"}
    assert back["d"].tolist() == [dt.date(2024, 1, 1), None] * 2
    only_empty = iter_sbdf_bytes(iter([empty, empty]))
    assert len(read_pieces(only_empty, tmp_path, "empty.sbdf")) == 0
    assert only_empty.column_types == {"d": "String"}
