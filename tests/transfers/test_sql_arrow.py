"""SqlBatchReader against real databases: SQLite (untyped) and PostgreSQL (typed by OID)."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3

import pyarrow as pa
import pytest

from airflow_provider_spotfire.exceptions import SpotfireDataError
from airflow_provider_spotfire.transfers.sql_arrow import SqlBatchReader


def _sqlite(rows: list[tuple], ddl: str = "a, b, c") -> sqlite3.Cursor:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE TABLE t ({ddl})")
    if rows:
        marks = ",".join("?" * len(rows[0]))
        conn.executemany(f"INSERT INTO t VALUES ({marks})", rows)
    cur = conn.cursor()
    cur.execute("SELECT * FROM t")
    return cur


def test_sqlite_types_inferred_from_values_and_batches_bounded() -> None:
    rows = [(i, i / 2, f"s{i}") for i in range(25)]
    reader = SqlBatchReader(_sqlite(rows), batch_rows=10)
    batches = list(reader)
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert reader.schema == pa.schema([("a", pa.int64()), ("b", pa.float64()), ("c", pa.string())])
    table = pa.Table.from_batches(batches)
    assert table.column("a").to_pylist() == list(range(25))
    assert table.column("c").to_pylist()[-1] == "s24"
    assert all(m.reason.startswith("inferred") for m in reader.mapping)
    assert (reader.rows, reader.batches) == (25, 3)


def test_sqlite_column_null_at_first_is_typed_by_later_rows() -> None:
    rows = [(i, None, None) for i in range(30)] + [(30, 1.5, None)]
    reader = SqlBatchReader(_sqlite(rows), batch_rows=10, inference_rows=100)
    table = pa.Table.from_batches(list(reader))
    assert table.schema.field("b").type == pa.float64()
    assert table.column("b").to_pylist()[-1] == 1.5
    assert table.schema.field("c").type == pa.string()
    assert "only NULLs" in reader.mapping[2].reason
    assert table.num_rows == 31


def test_sqlite_empty_result_gives_one_empty_batch_with_a_schema() -> None:
    reader = SqlBatchReader(_sqlite([]), batch_rows=10)
    batches = list(reader)
    assert len(batches) == 1 and batches[0].num_rows == 0
    assert [f.name for f in reader.schema] == ["a", "b", "c"]


def test_sqlite_mixed_kinds_in_one_column_is_one_clear_error() -> None:
    reader = SqlBatchReader(_sqlite([(1, "x", 1), (2, 3, 2)]))
    with pytest.raises(SpotfireDataError, match=r"Column 'b' .*different kinds \(int, str\).*CAST"):
        list(reader)


def test_sqlite_value_that_changes_kind_after_inference_names_column_and_batch() -> None:
    rows = [(i, i, i) for i in range(5)] + [(5, "five", 5)]
    reader = SqlBatchReader(_sqlite(rows), batch_rows=5, inference_rows=5)
    with pytest.raises(SpotfireDataError, match=r"Column 'b', result batch 2: .*int64.*CAST"):
        list(reader)


def test_duplicate_column_names_are_refused() -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.cursor()
    cur.execute("SELECT 1 AS x, 2 AS x")
    with pytest.raises(SpotfireDataError, match=r"duplicate column names \['x'\].*aliases"):
        list(SqlBatchReader(cur))


def test_statement_without_result_set_is_refused() -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (a)")
    with pytest.raises(SpotfireDataError, match="no result set"):
        list(SqlBatchReader(cur))


def test_sqlite_integer_out_of_int64_range_is_named() -> None:
    reader = SqlBatchReader(_sqlite([(1, 2, 3)]))
    # SQLite itself stores at most int64; a REAL beyond it cast to int in Python is what overflows:
    reader.cursor = _FakeCursor([("big",)], [(2**70,)])
    with pytest.raises(SpotfireDataError, match="Column 'big'"):
        list(reader)


class _FakeCursor:
    """Only for the overflow case SQLite cannot produce."""

    def __init__(self, description: list[tuple], rows: list[tuple]) -> None:
        self.description = [(d[0], None, None, None, None, None, None) for d in description]
        self._rows = rows

    def fetchmany(self, n: int) -> list[tuple]:
        out, self._rows = self._rows[:n], self._rows[n:]
        return out


PG_DDL = """
CREATE TABLE sales (
    id bigint, qty integer, small smallint, price numeric(12,2), ratio real, score double precision,
    loose numeric, ok boolean, name text, code varchar(8), day date, at_time time,
    stamp timestamp, stamp_tz timestamptz, took interval, raw bytea, uid uuid, doc jsonb
)
"""


@pytest.fixture
def pg_sales(postgres_server):  # type: ignore[no-untyped-def]
    conn = postgres_server.connect()
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS sales")
    cur.execute(PG_DDL)
    cur.execute(
        "INSERT INTO sales VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (
            2**40,
            7,
            3,
            decimal.Decimal("1234567890.12"),
            0.5,
            1e300,
            decimal.Decimal("3.14159"),
            True,
            "åäö 😀",
            "AB",
            dt.date(2024, 2, 29),
            dt.time(23, 59, 59, 123456),
            dt.datetime(2024, 1, 1, 12, 0),
            dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.timedelta(days=1, seconds=5),
            b"\x00\x01",
            "6f1c7d0a-9a9e-4f7e-8a35-2f3b7d6c1e01",
            '{"a": 1}',
        ),
    )
    cur.execute("INSERT INTO sales (id) VALUES (NULL)")
    conn.commit()
    yield conn
    conn.close()


def test_postgres_types_come_from_the_description(pg_sales) -> None:  # type: ignore[no-untyped-def]
    cur = pg_sales.cursor(name="reader_test")  # server-side cursor: description after the first fetch
    cur.execute("SELECT * FROM sales ORDER BY id NULLS LAST")
    reader = SqlBatchReader(cur, batch_rows=1)
    table = pa.Table.from_batches(list(reader))
    types = {f.name: f.type for f in table.schema}
    assert types == {
        "id": pa.int64(),
        "qty": pa.int32(),
        "small": pa.int32(),
        "price": pa.decimal128(12, 2),
        "ratio": pa.float32(),
        "score": pa.float64(),
        "loose": pa.float64(),
        "ok": pa.bool_(),
        "name": pa.string(),
        "code": pa.string(),
        "day": pa.date32(),
        "at_time": pa.time64("us"),
        "stamp": pa.timestamp("us"),
        "stamp_tz": pa.timestamp("us", tz="UTC"),
        "took": pa.duration("us"),
        "raw": pa.binary(),
        "uid": pa.string(),
        "doc": pa.string(),
    }
    first = table.slice(0, 1).to_pylist()[0]
    assert first["price"] == decimal.Decimal("1234567890.12")
    assert first["name"] == "åäö 😀"
    assert first["stamp_tz"] == dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC)
    assert first["took"] == dt.timedelta(days=1, seconds=5)
    assert first["raw"] == b"\x00\x01"
    assert first["doc"] == '{"a": 1}'
    assert first["uid"] == "6f1c7d0a-9a9e-4f7e-8a35-2f3b7d6c1e01"
    assert table.slice(1, 1).to_pylist()[0]["qty"] is None
    loose = next(m for m in reader.mapping if m.name == "loose")
    assert "CAST to numeric(p,s)" in loose.reason
    assert reader.batches == 2
