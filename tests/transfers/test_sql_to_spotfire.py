"""SqlToSpotfireOperator end to end: a real database (SQLite file, PostgreSQL) → the emulator's library.

Each test reads the item back with ``spotfire.sbdf.import_data`` and compares it with the query
result fetched directly from the database; bad input is checked to leave no job and no item.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireDataError
from airflow_provider_spotfire.sbdf import read_sbdf
from airflow_provider_spotfire.transfers.sql_to_spotfire import SqlToSpotfireOperator
from tests.helpers import EXAMPLE_DAGS, run_dag, task_states, xcom_value
from tests.library.conftest import (
    REPORTS,
    RecordingTI,
    assert_nothing_left,
    chunk_posts,
    item_bytes,
    items_at,
    upload_jobs,
    upload_requests,
)

KIB = 1024
CHUNK = 16 * KIB
ROWS = 4000
XCOM_KEYS = {"rows", "columns", "column_types", "notes", "batches", "bytes", "chunks", "sha256", "source"}


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": RecordingTI()}


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite file with ``orders`` (ROWS rows, NULLs in ``amount``) as the connection ``orders_db``."""
    path = tmp_path / "orders.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER, region TEXT, amount REAL, note TEXT)")
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                (i, ["North", "South", "East", "Väst"][i % 4], None if i % 7 == 0 else i * 1.5, f"n😀{i}")
                for i in range(ROWS)
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_ORDERS_DB", f"sqlite://{path}")  # sqlite:// + the absolute path
    return path


def make_op(**kwargs: Any) -> SqlToSpotfireOperator:
    kwargs.setdefault("task_id", "publish")
    kwargs.setdefault("conn_id", "orders_db")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("chunk_size", CHUNK)
    kwargs.setdefault("batch_rows", 700)
    return SqlToSpotfireOperator(**kwargs)


def read_back(emulator: Any, library_path: str, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "back.sbdf"
    path.write_bytes(item_bytes(emulator, library_path))
    return read_sbdf(path)


def assert_same_table(back: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(back.columns) == list(expected.columns)
    assert len(back) == len(expected)
    for name in expected.columns:
        got = [None if pd.isna(v) else v for v in back[name].tolist()]
        want = [None if pd.isna(v) else v for v in expected[name].tolist()]
        assert got == want, name


def assert_no_upload(emulator: Any, library_path: str) -> None:
    assert upload_jobs(emulator) == []
    assert items_at(emulator, library_path) == []


# ---- SQLite --------------------------------------------------------------------------------------
def test_sqlite_query_result_is_streamed_into_the_library(
    spotfire_conn_id, spotfire_emulator, sqlite_db, context, tmp_path
):
    sql = "SELECT id, region, amount, note FROM orders ORDER BY id"
    out = make_op(library_path=f"{REPORTS}/orders", sql=sql).execute(context)

    with sqlite3.connect(sqlite_db) as db:
        expected = pd.read_sql_query(sql, db)
    assert_same_table(read_back(spotfire_emulator, f"{REPORTS}/orders", tmp_path), expected)
    assert set(out) >= XCOM_KEYS and json.loads(json.dumps(out)) == out
    assert out["rows"] == ROWS and out["batches"] == -(-ROWS // 700)
    assert out["column_types"] == {
        "id": "LongInteger",
        "region": "String",
        "amount": "Real",
        "note": "String",
    }
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "finished" and job["numberOfBytes"] is None  # streamed: size not declared
    assert out["chunks"] == len(chunk_posts(upload_requests(spotfire_emulator))) > 1


def test_sqlite_parameters(spotfire_conn_id, spotfire_emulator, sqlite_db, context, tmp_path):
    out = make_op(
        library_path=f"{REPORTS}/north",
        sql="SELECT id FROM orders WHERE region = ? AND id < ? ORDER BY id",
        parameters=("North", 100),
    ).execute(context)
    assert out["rows"] == 25
    assert read_back(spotfire_emulator, f"{REPORTS}/north", tmp_path)["id"].tolist() == list(range(0, 100, 4))


@pytest.mark.parametrize(
    ("sql", "error", "match"),
    [
        ("SELECT nope FROM orders", SpotfireDataError, r"The query failed on connection 'orders_db'"),
        ("SELECT * FROM missing_table", SpotfireDataError, r"no such table: missing_table"),
        ("SELECT 1; SELECT 2", SpotfireConfigurationError, r"sql holds 2 statements; give exactly one query"),
        ("CREATE TABLE t2 (a INTEGER)", SpotfireDataError, r"(?i)no result set|returns no rows|returned no"),
    ],
    ids=["bad-column", "bad-table", "two-statements", "no-rows-statement"],
)
def test_bad_queries_open_no_job(spotfire_conn_id, spotfire_emulator, sqlite_db, context, sql, error, match):
    with pytest.raises(error, match=match):
        make_op(library_path=f"{REPORTS}/bad", sql=sql).execute(context)
    assert_no_upload(spotfire_emulator, f"{REPORTS}/bad")


def test_a_non_sql_connection_is_one_clear_error(spotfire_conn_id, spotfire_emulator, context):
    with pytest.raises(SpotfireConfigurationError, match=r"Connection 'spotfire_default' .* has no SQL hook"):
        make_op(library_path=f"{REPORTS}/bad", sql="SELECT 1", conn_id=spotfire_conn_id).execute(context)
    assert_no_upload(spotfire_emulator, f"{REPORTS}/bad")


def test_a_value_of_another_kind_mid_stream_cancels_the_job(
    spotfire_conn_id, spotfire_emulator, sqlite_db, context
):
    with sqlite3.connect(sqlite_db) as db:
        db.execute("INSERT INTO orders VALUES (?, 'North', 'not a number', 'x')", (ROWS,))
    path = f"{REPORTS}/mixed"
    with pytest.raises(SpotfireDataError, match=r"'amount'.*batch"):
        make_op(library_path=path, sql="SELECT * FROM orders ORDER BY id").execute(context)
    assert chunk_posts(upload_requests(spotfire_emulator)), "the error should come after chunks were sent"
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "cancelled"
    assert_nothing_left(spotfire_emulator, path)


def test_the_sql_template_file_is_rendered(spotfire_conn_id, spotfire_emulator, sqlite_db, context, tmp_path):
    from airflow.sdk import DAG

    (tmp_path / "by_region.sql").write_text(
        "-- {{ params.note }}\nSELECT region, COUNT(*) AS n FROM orders WHERE id < {{ params.limit }} "
        "GROUP BY region ORDER BY region\n"
    )
    with DAG("sql_template", schedule=None, template_searchpath=[str(tmp_path)]):
        op = make_op(library_path=f"{REPORTS}/tpl", sql="by_region.sql", params={"limit": 8, "note": "x"})
    op.render_template_fields({"params": op.params})
    assert op.sql.startswith("-- x\nSELECT region") and "id < 8" in op.sql
    op.execute(context)
    back = read_back(spotfire_emulator, f"{REPORTS}/tpl", tmp_path)
    assert back["region"].tolist() == ["East", "North", "South", "Väst"] and back["n"].tolist() == [
        2,
        2,
        2,
        2,
    ]


async def test_deferrable_sqlite_upload(spotfire_conn_id, spotfire_emulator, sqlite_db, context, tmp_path):
    op = make_op(
        library_path=f"{REPORTS}/deferred", sql="SELECT id FROM orders", deferrable=True, poll_interval=0.2
    )
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    event = None
    async for fired in info.value.trigger.run():
        event = fired.payload
        break
    assert event is not None and event["status"] == "success"
    out = op.execute_complete(context, event=event, **info.value.kwargs)
    assert out["rows"] == ROWS and set(out) >= XCOM_KEYS
    assert read_back(spotfire_emulator, f"{REPORTS}/deferred", tmp_path)["id"].tolist() == list(range(ROWS))


def test_the_example_dag_runs(
    spotfire_conn_id, spotfire_emulator, spotfire_airflow_home, tmp_path, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_ORDERS_DB", f"sqlite://{tmp_path / 'example_orders.db'}")
    dr = run_dag(
        EXAMPLE_DAGS / "example_spotfire_sql_to_spotfire.py",
        "example_spotfire_sql_to_spotfire",
        resources=("sql",),
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    result = xcom_value(dr, "publish_orders")
    assert result["rows"] == 4 and result["columns"] == 4
    back = read_back(spotfire_emulator, result["library_path"], tmp_path)
    assert back["region"].tolist() == ["East", "North", "South", "West"]
    assert back["orders"].tolist() == [2500, 2500, 2500, 2500]


# ---- PostgreSQL ----------------------------------------------------------------------------------
@pytest.fixture
def pg_orders(postgres_server, monkeypatch):  # type: ignore[no-untyped-def]
    conn = postgres_server.connect()
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS pg_orders")
        cur.execute(
            "CREATE TABLE pg_orders AS SELECT g AS id, (g % 4)::text || '-region' AS region, "
            "CASE WHEN g % 9 = 0 THEN NULL ELSE g * 0.5 END::double precision AS amount, "
            "DATE '2024-01-01' + (g % 365) AS day, g % 2 = 0 AS even "
            f"FROM generate_series(1, {ROWS}) AS g"
        )
    monkeypatch.setenv("AIRFLOW_CONN_PG_DB", postgres_server.uri)
    yield conn
    conn.close()


PG_SQL = "SELECT id, region, amount, day, even FROM pg_orders ORDER BY id"


def test_postgres_query_result_is_streamed_into_the_library(
    spotfire_conn_id, spotfire_emulator, pg_orders, context, tmp_path
):
    op = make_op(library_path=f"{REPORTS}/pg", sql=PG_SQL, conn_id="pg_db", batch_rows=512)
    out = op.execute(context)

    with pg_orders.cursor() as cur:
        cur.execute(PG_SQL)
        expected = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
    assert_same_table(read_back(spotfire_emulator, f"{REPORTS}/pg", tmp_path), expected)
    assert out["rows"] == ROWS and out["batches"] == -(-ROWS // 512)
    assert out["column_types"] == {
        "id": "Integer",
        "region": "String",
        "amount": "Real",
        "day": "Date",
        "even": "Boolean",
    }

    lineage = op.get_openlineage_facets_on_complete(None)
    names = [d.name for d in lineage.inputs]
    assert any(n.endswith("public.pg_orders") for n in names), names
    assert lineage.outputs and lineage.outputs[0].name.endswith(f"{REPORTS}/pg")


def test_postgres_bad_query_opens_no_job(spotfire_conn_id, spotfire_emulator, pg_orders, context):
    with pytest.raises(SpotfireDataError, match=r"The query failed on connection 'pg_db'.*nope"):
        make_op(library_path=f"{REPORTS}/pg-bad", sql="SELECT nope FROM pg_orders", conn_id="pg_db").execute(
            context
        )
    assert_no_upload(spotfire_emulator, f"{REPORTS}/pg-bad")


def test_deferred_sql_upload_without_poll_interval_uses_the_connections(
    spotfire_conn_id, spotfire_emulator, sqlite_db, context, monkeypatch
):
    extra = {"poll_interval": 0.3}
    monkeypatch.setenv("AIRFLOW_CONN_SPOTFIRE_DEFAULT", spotfire_emulator.connection_json("airflow", extra))
    op = make_op(library_path=f"{REPORTS}/conn-poll", sql="SELECT id FROM orders", deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert info.value.trigger.serialize()[1]["poll_interval"] == 0.3
