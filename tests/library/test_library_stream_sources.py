"""SpotfireUploadSbdfOperator with table sources streamed as SBDF, over real HTTP against the emulator.

Every kind of table source (directly and returned by a callable) is uploaded, read back with
``spotfire.sbdf.import_data`` and compared; schema changes and sources that fail mid-stream are
checked to cancel the job (no open job, no item), deferrable or not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_spotfire.exceptions import (
    SbdfSchemaError,
    SpotfireConfigurationError,
    SpotfireDataError,
    UploadAborted,
)
from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.sbdf import read_sbdf, write_sbdf
from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger
from tests.library.conftest import (
    REPORTS,
    UPLOAD_PATH,
    assert_nothing_left,
    chunk_number,
    chunk_posts,
    item_bytes,
    upload_jobs,
    upload_requests,
)

KIB = 1024
CHUNK = 16 * KIB
ROWS_PER_BATCH = 1500
BATCHES = 3
XCOM_KEYS = {"rows", "columns", "column_types", "notes", "batches", "bytes", "chunks", "sha256", "source"}


def frame(batch: int, rows: int = ROWS_PER_BATCH) -> pd.DataFrame:
    """One batch of 8 mixed columns (int64, float64, two strings, bool, datetime, Int64 with gaps, date)."""
    start = batch * rows
    ids = np.arange(start, start + rows, dtype="int64")
    return pd.DataFrame(
        {
            "id": ids,
            "amount": ids * 0.25,
            "region": pd.Series(["north", "south", "east", "väst"], dtype=object).iloc[ids % 4].to_numpy(),
            "code": [f"c{i:07d}" for i in ids],
            "flag": ids % 3 == 0,
            "at": pd.Timestamp("2024-01-01") + pd.to_timedelta(ids, unit="s"),
            "units": pd.array([None if i % 5 == 0 else int(i) for i in ids], dtype="Int64"),
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=int(i % 365)) for i in ids],
        }
    )


def frames() -> list[pd.DataFrame]:
    return [frame(b) for b in range(BATCHES)]


def record_batches() -> list[pa.RecordBatch]:
    return [pa.RecordBatch.from_pandas(f, preserve_index=False) for f in frames()]


def whole() -> pd.DataFrame:
    return pd.concat(frames(), ignore_index=True)


def expected_back(tmp_path: Path) -> pd.DataFrame:
    """The whole table written in one piece by our writer, read back by ``spotfire``."""
    write_sbdf(whole(), tmp_path / "expected.sbdf")
    return read_sbdf(tmp_path / "expected.sbdf")


def read_back(emulator: Any, library_path: str, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "back.sbdf"
    path.write_bytes(item_bytes(emulator, library_path))
    return read_sbdf(path)


def make_op(**kwargs: Any) -> SpotfireUploadSbdfOperator:
    kwargs.setdefault("task_id", "upload")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("chunk_size", CHUNK)
    return SpotfireUploadSbdfOperator(**kwargs)


def generate_frames() -> Iterator[pd.DataFrame]:
    yield from frames()


def generate_batches() -> Iterator[pa.RecordBatch]:
    yield from record_batches()


SOURCES: dict[str, tuple[Callable[[], Any], str]] = {
    "dataframe": (whole, "dataframe"),
    "list-of-dataframes": (frames, "batches"),
    "generator-of-dataframes": (generate_frames, "batches"),
    "arrow-table": (lambda: pa.Table.from_pandas(whole(), preserve_index=False), "arrow"),
    "record-batch-reader": (
        lambda: pa.RecordBatchReader.from_batches(record_batches()[0].schema, record_batches()),
        "arrow",
    ),
    "list-of-record-batches": (record_batches, "batches"),
    "generator-of-record-batches": (generate_batches, "batches"),
    "polars": (lambda: pl.from_pandas(whole()), "polars"),
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_table_source_is_streamed_and_reads_back(
    spotfire_conn_id, spotfire_emulator, context, tmp_path, name
):
    make, kind = SOURCES[name]
    path = f"{REPORTS}/{name}"
    out = make_op(library_path=path, source=make()).execute(context)

    back = read_back(spotfire_emulator, path, tmp_path)
    pd.testing.assert_frame_equal(back, expected_back(tmp_path))
    assert back["id"].tolist() == list(range(BATCHES * ROWS_PER_BATCH))
    assert back["code"].iloc[-1] == f"c{BATCHES * ROWS_PER_BATCH - 1:07d}"
    assert out["source"] == kind and set(out) >= XCOM_KEYS
    assert json.loads(json.dumps(out)) == out  # XCom-safe
    assert out["rows"] == BATCHES * ROWS_PER_BATCH and out["columns"] == 8
    assert out["column_types"]["at"] == "DateTime" and out["column_types"]["day"] == "Date"
    content = item_bytes(spotfire_emulator, path)
    assert out["sha256"] == hashlib.sha256(content).hexdigest() and out["bytes"] == len(content)
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "finished"
    assert job["numberOfBytes"] is None and job["numberOfChunks"] is None  # streamed: sizes not declared
    posts = chunk_posts(upload_requests(spotfire_emulator))
    assert out["chunks"] == len(posts) == -(-len(content) // CHUNK) > 1
    assert all(r["digest_headers"] == ["Content-MD5", "Digest"] for r in posts)


@pytest.mark.parametrize("name", ["generator-of-dataframes", "generator-of-record-batches", "arrow-table"])
def test_a_callable_returning_a_table_source(spotfire_conn_id, spotfire_emulator, context, tmp_path, name):
    make, _ = SOURCES[name]
    out = make_op(library_path=f"{REPORTS}/called", source=make).execute(context)
    assert out["source"] == "callable" and out["rows"] == BATCHES * ROWS_PER_BATCH
    pd.testing.assert_frame_equal(
        read_back(spotfire_emulator, f"{REPORTS}/called", tmp_path), expected_back(tmp_path)
    )


def test_batches_are_uploaded_while_they_are_produced(spotfire_conn_id, spotfire_emulator, context):
    """Not collected first: chunks reach the server before the generator yields its last batch."""
    posted_before: list[int] = []

    def batches() -> Iterator[pd.DataFrame]:
        for number in range(8):
            posted_before.append(len(chunk_posts(upload_requests(spotfire_emulator))))
            yield frame(number)

    out = make_op(library_path=f"{REPORTS}/lazy", source=batches, parallelism=1).execute(context)
    assert out["batches"] == 8
    assert posted_before[0] == 0 and posted_before[-1] >= 2  # the upload ran alongside the generator


def test_the_same_xcom_keys_as_a_dataframe(spotfire_conn_id, spotfire_emulator, context):
    from_frame = make_op(library_path=f"{REPORTS}/a", source=whole()).execute(context)
    from_batches = make_op(library_path=f"{REPORTS}/b", source=generate_batches).execute(context)
    assert set(from_frame) == set(from_batches)
    assert from_frame["rows"] == from_batches["rows"] and from_batches["batches"] == BATCHES
    assert from_frame["column_types"] == from_batches["column_types"]


def test_a_failed_chunk_is_resent_from_the_buffer(spotfire_conn_id, spotfire_emulator, context, tmp_path):
    spotfire_emulator.inject_faults("503", "drop_after", path_prefix=UPLOAD_PATH + "/", method="POST")
    out = make_op(library_path=f"{REPORTS}/resent", source=generate_frames, parallelism=2).execute(context)

    pd.testing.assert_frame_equal(
        read_back(spotfire_emulator, f"{REPORTS}/resent", tmp_path), expected_back(tmp_path)
    )
    posts = chunk_posts(upload_requests(spotfire_emulator))
    faulted = [chunk_number(r) for r in posts if r["fault"]]
    assert len(faulted) == 2
    numbers = [chunk_number(r) for r in posts]
    assert any(numbers.count(n) == 2 for n in faulted)  # the refused chunk was sent again
    assert sorted(set(numbers)) == list(range(1, out["chunks"] + 1))
    assert upload_jobs(spotfire_emulator, "open") == []


async def test_deferrable_streams_then_defers(spotfire_conn_id, spotfire_emulator, context, tmp_path):
    op = make_op(
        library_path=f"{REPORTS}/deferred", source=generate_batches, deferrable=True, poll_interval=0.2
    )
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    trigger = info.value.trigger
    assert isinstance(trigger, SpotfireUploadJobTrigger)
    _classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs and "airflow-secret" not in json.dumps(kwargs)
    event = None
    async for fired in trigger.run():
        event = fired.payload
        break
    assert event is not None and event["status"] == "success"
    out = op.execute_complete(context, event=event, **info.value.kwargs)
    assert out["rows"] == BATCHES * ROWS_PER_BATCH and set(out) >= XCOM_KEYS
    pd.testing.assert_frame_equal(
        read_back(spotfire_emulator, f"{REPORTS}/deferred", tmp_path), expected_back(tmp_path)
    )


# ---- failures mid-stream ----------------------------------------------------------------------------
def _renamed(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={"code": "kod"})


def _reordered(df: pd.DataFrame) -> pd.DataFrame:
    cols = list(df.columns)
    cols[1], cols[2] = cols[2], cols[1]
    return df[cols]


def _retyped(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(amount=df["amount"].astype(str))


SCHEMA_CHANGES = {
    "name": (_renamed, r"batch 3: column 'kod' breaks the schema: at position 3"),
    "order": (_reordered, r"batch 3: column 'region' breaks the schema: at position 1"),
    "type": (_retyped, r"batch 3: column 'amount' is SBDF String but the first batch made it SBDF Real"),
}


def assert_cancelled_midway(emulator: Any, library_path: str) -> None:
    """Chunks had been sent, the one job was cancelled, and nothing is left."""
    assert chunk_posts(upload_requests(emulator)), "the failure should come after chunks were sent"
    (job,) = upload_jobs(emulator)
    assert job["status"] == "cancelled"
    assert_nothing_left(emulator, library_path)


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
@pytest.mark.parametrize("change", list(SCHEMA_CHANGES))
def test_a_schema_change_mid_stream_cancels_the_job(
    spotfire_conn_id, spotfire_emulator, context, change, deferrable
):
    alter, message = SCHEMA_CHANGES[change]

    def batches() -> Iterator[pd.DataFrame]:
        yield frame(0)
        yield frame(1)
        yield alter(frame(2))

    path = f"{REPORTS}/schema-{change}"
    with pytest.raises(SbdfSchemaError, match=message) as info:
        make_op(library_path=path, source=batches, deferrable=deferrable).execute(context)
    assert info.value.batch == 3
    assert_cancelled_midway(spotfire_emulator, path)


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_a_generator_that_raises_mid_stream_cancels_the_job(
    spotfire_conn_id, spotfire_emulator, context, deferrable
):
    closed: list[bool] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from record_batches()
            raise OSError("warehouse connection lost")
        finally:
            closed.append(True)

    path = f"{REPORTS}/raises"
    with pytest.raises(
        SpotfireDataError, match=r"the callable source raised OSError after \d+ bytes: warehouse"
    ):
        make_op(library_path=path, source=batches, deferrable=deferrable).execute(context)
    assert closed == [True]
    assert_cancelled_midway(spotfire_emulator, path)


def test_a_batch_of_another_kind_mid_stream_cancels_the_job(spotfire_conn_id, spotfire_emulator, context):
    def batches() -> Iterator[Any]:
        yield from frames()
        yield {"id": [1]}

    path = f"{REPORTS}/mixed"
    with pytest.raises(SpotfireDataError, match=r"batch 4 of the source is a dict"):
        make_op(library_path=path, source=batches).execute(context)
    assert_cancelled_midway(spotfire_emulator, path)


def test_on_kill_mid_stream_cancels_the_job_and_closes_the_source(
    spotfire_conn_id, spotfire_emulator, context
):
    holder: list[SpotfireUploadSbdfOperator] = []
    closed: list[bool] = []

    def batches() -> Iterator[pd.DataFrame]:
        try:
            for number in range(50):
                if number == 4:
                    holder[0].on_kill()  # e.g. the task timed out
                yield frame(number)
        finally:
            closed.append(True)

    holder.append(make_op(library_path=f"{REPORTS}/killed", source=batches, parallelism=1))
    with pytest.raises(UploadAborted):
        holder[0].execute(context)
    assert closed == [True]
    assert_cancelled_midway(spotfire_emulator, f"{REPORTS}/killed")


def test_an_empty_generator_opens_no_job(spotfire_conn_id, spotfire_emulator, context):
    with pytest.raises(SpotfireDataError, match="the source produced no batches"):
        make_op(library_path=f"{REPORTS}/empty", source=lambda: iter([])).execute(context)
    assert upload_jobs(spotfire_emulator) == []


def test_a_zero_row_table_keeps_its_columns(spotfire_conn_id, spotfire_emulator, context, tmp_path):
    table = pa.Table.from_pandas(frame(0), preserve_index=False).slice(0, 0)
    out = make_op(library_path=f"{REPORTS}/zero", source=table).execute(context)
    back = read_back(spotfire_emulator, f"{REPORTS}/zero", tmp_path)
    assert out["rows"] == 0 and len(back) == 0 and list(back.columns) == list(frame(0).columns)


@pytest.mark.parametrize(
    "source", [42, [1, 2], {"a": [1]}, b"\xdf\x5b"], ids=["int", "list", "dict", "bytes"]
)
def test_not_a_table_fails_when_the_dag_is_parsed(source):
    with pytest.raises(SpotfireConfigurationError, match=r"source must be the path of an \.sbdf file"):
        make_op(library_path=f"{REPORTS}/x", source=source)
