"""SpotfireUploadSbdfOperator against the emulator (a minimal task context; DAG runs are in test_library_dags.py)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

import pandas as pd
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_spotfire.exceptions import (
    SpotfireConfigurationError,
    SpotfireDataError,
    SpotfireJobError,
    UploadAborted,
)
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from airflow_provider_spotfire.links import SpotfireLibraryItemLink
from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.sbdf import read_sbdf
from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger
from airflow_provider_spotfire.upload.progress import ProgressLogger
from tests.library.conftest import (
    REPORTS,
    assert_nothing_left,
    item_bytes,
    items_at,
    sha256_file,
    upload_jobs,
    upload_requests,
)

KIB = 1024
SALES = pd.DataFrame(
    {
        "region": ["north", "south", "east"],
        "amount": [10.5, 20.25, 30.0],
        "units": pd.array([1, 2, None], dtype="Int64"),
        "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]).tz_localize("Europe/Stockholm"),
    }
)


def make_op(**kwargs: Any) -> SpotfireUploadSbdfOperator:
    kwargs.setdefault("task_id", "upload")
    kwargs.setdefault("deferrable", False)
    return SpotfireUploadSbdfOperator(**kwargs)


def read_back(emulator: Any, library_path: str, tmp_path: Any) -> pd.DataFrame:
    path = tmp_path / "back.sbdf"
    path.write_bytes(item_bytes(emulator, library_path))
    return read_sbdf(path)


async def run_trigger(trigger: SpotfireUploadJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger fired no event")


# ---- sources --------------------------------------------------------------------------------------
def test_uploads_an_sbdf_file(spotfire_conn_id, spotfire_emulator, make_sbdf, context):
    path = make_sbdf(300_000)
    op = make_op(library_path=f"{REPORTS}/file", source=str(path), chunk_size=64 * KIB, keywords="a, b")
    out = op.execute(context)

    assert json.loads(json.dumps(out)) == out  # XCom-safe
    assert (
        out["sha256"]
        == sha256_file(path)
        == hashlib.sha256(item_bytes(spotfire_emulator, f"{REPORTS}/file")).hexdigest()
    )
    assert out["library_path"] == f"{REPORTS}/file" and out["chunks"] == 5 and out["source"] == "file"
    assert out["finished_at"] and out["job_id"] == upload_jobs(spotfire_emulator)[0]["jobId"]
    assert items_at(spotfire_emulator, f"{REPORTS}/file")[0]["keywords"] == ["a", "b"]
    url = context["ti"].xcom[SpotfireLibraryItemLink.xcom_key]
    assert (
        url == out["url"] and url.startswith(spotfire_emulator.url) and url.endswith("/Airflow/Reports/file")
    )
    assert "airflow-secret" not in json.dumps(out) + url


def test_uploads_a_dataframe(spotfire_conn_id, spotfire_emulator, context, tmp_path):
    out = make_op(library_path=f"{REPORTS}/frame", source=SALES, timezone="UTC").execute(context)

    assert out["rows"] == 3 and out["columns"] == 4 and out["source"] == "dataframe"
    assert any("converted to UTC" in n for n in out["notes"])
    back = read_back(spotfire_emulator, f"{REPORTS}/frame", tmp_path)
    assert back["region"].tolist() == ["north", "south", "east"]
    assert back["units"].tolist()[:2] == [1, 2] and pd.isna(back["units"].tolist()[2])
    assert str(back["day"].iloc[0]) == "2023-12-31 23:00:00"  # Stockholm midnight in UTC


def test_uploads_what_a_callable_returns(spotfire_conn_id, spotfire_emulator, context, tmp_path):
    def make_frame() -> pd.DataFrame:
        return SALES[["region", "amount"]]

    op = make_op(library_path=f"{REPORTS}/called", source=make_frame, keep_index=True)
    out = op.execute(context)
    assert out["source"] == "callable" and out["columns"] == 3
    assert read_back(spotfire_emulator, f"{REPORTS}/called", tmp_path).columns.tolist() == [
        "index",
        "region",
        "amount",
    ]


# ---- bad input ------------------------------------------------------------------------------------
def test_a_failing_callable_opens_no_job(spotfire_conn_id, spotfire_emulator, context):
    def broken() -> pd.DataFrame:
        raise ValueError("warehouse unreachable")

    with pytest.raises(
        SpotfireDataError, match=r"The source callable .*broken raised ValueError: warehouse unreachable"
    ):
        make_op(library_path=f"{REPORTS}/x", source=broken).execute(context)
    assert upload_requests(spotfire_emulator) == []


def test_a_callable_must_return_a_dataframe(spotfire_conn_id, spotfire_emulator, context):
    with pytest.raises(SpotfireDataError, match="returned list, not a table"):
        make_op(library_path=f"{REPORTS}/x", source=lambda: [1, 2]).execute(context)
    assert upload_requests(spotfire_emulator) == []


def test_unsupported_column_types_open_no_job(spotfire_conn_id, spotfire_emulator, context):
    df = pd.DataFrame({"ok": [1, 2], "z": [complex(1, 2), complex(3, 4)]})
    with pytest.raises(SpotfireDataError, match="column 'z'"):
        make_op(library_path=f"{REPORTS}/complex", source=df).execute(context)
    assert upload_requests(spotfire_emulator) == []


def test_not_an_sbdf_file(spotfire_conn_id, spotfire_emulator, context, tmp_path):
    csv = tmp_path / "sales.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(SpotfireDataError, match="is not an SBDF file"):
        make_op(library_path=f"{REPORTS}/csv", source=str(csv)).execute(context)
    assert upload_requests(spotfire_emulator) == []


@pytest.mark.parametrize("library_path", ["", f"{REPORTS}/", "relative/path"])
def test_bad_library_path(spotfire_conn_id, spotfire_emulator, context, make_sbdf, library_path):
    with pytest.raises(SpotfireConfigurationError, match="library_path"):
        make_op(library_path=library_path, source=str(make_sbdf(100))).execute(context)
    assert upload_requests(spotfire_emulator) == []


def test_missing_parent_folder_leaves_nothing(spotfire_conn_id, spotfire_emulator, context):
    with pytest.raises(Exception, match="'/Airflow/Missing' does not exist"):
        make_op(library_path="/Airflow/Missing/sales", source=SALES).execute(context)
    assert upload_jobs(spotfire_emulator) == []
    assert_nothing_left(spotfire_emulator, "/Airflow/Missing/sales")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": 42}, "source must be"),
        ({"source": None}, "source must be"),
        ({"source": "x.sbdf", "chunk_size": -1}, "chunk_size"),
        ({"source": "x.sbdf", "parallelism": 0}, "parallelism"),
        ({"source": "x.sbdf", "poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs, match):
    with pytest.raises(SpotfireConfigurationError, match=match):
        make_op(library_path=f"{REPORTS}/x", **kwargs)


# ---- deferrable -----------------------------------------------------------------------------------
async def test_deferrable_sends_chunks_then_defers_to_the_trigger(
    spotfire_conn_id, spotfire_emulator, context, make_sbdf
):
    path = make_sbdf(150_000)
    op = make_op(
        library_path=f"{REPORTS}/deferred",
        source=str(path),
        chunk_size=64 * KIB,
        deferrable=True,
        poll_interval=0.2,
    )
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    trigger = info.value.trigger
    assert isinstance(trigger, SpotfireUploadJobTrigger)
    _classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON-safe
    assert "airflow-secret" not in json.dumps(kwargs) and "token" not in json.dumps(kwargs).lower()
    assert kwargs["cancel_on_kill"] is True and kwargs["job_id"] == upload_jobs(spotfire_emulator)[0]["jobId"]
    assert len(upload_requests(spotfire_emulator)) >= 4  # create, 3 chunks, ... sent on the worker

    event = await run_trigger(trigger)
    assert event["status"] == "success" and event["details"]["finished_at"]
    out = op.execute_complete(context, event=event, **info.value.kwargs)
    assert out["finished_at"] == event["details"]["finished_at"]
    assert out["sha256"] == sha256_file(path)
    assert item_bytes(spotfire_emulator, f"{REPORTS}/deferred") == path.read_bytes()


def test_a_failed_wait_cancels_the_job(spotfire_conn_id, spotfire_emulator, context):
    hook = SpotfireHook(spotfire_conn_id)
    job = hook.create_upload_job(f"{REPORTS}/waited")
    op = make_op(library_path=f"{REPORTS}/waited", source=SALES, deferrable=True)
    event = {
        "status": "timeout",
        "job_id": job.job_id,
        "job_state": "open",
        "message": "deadline passed",
        "details": {},
    }
    result = {"job_id": job.job_id, "library_path": f"{REPORTS}/waited"}
    with pytest.raises(SpotfireJobError, match="deadline passed"):
        op.execute_complete(context, event=event, result=result, links=dict(job.links))
    (remote,) = upload_jobs(spotfire_emulator)
    assert remote["status"] == "cancelled"
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/waited")


# ---- kill -----------------------------------------------------------------------------------------
def test_on_kill_cancels_the_upload_job(spotfire_conn_id, spotfire_emulator, context, make_sbdf):
    spotfire_emulator.set_config(latency_ms=40)
    op = make_op(
        library_path=f"{REPORTS}/killed", source=str(make_sbdf(600_000)), chunk_size=16 * KIB, parallelism=2
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 15
    while not upload_jobs(spotfire_emulator, "open") and time.monotonic() < deadline:
        time.sleep(0.05)
    op.on_kill()
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], UploadAborted)
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "cancelled"
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/killed")


# ---- progress -------------------------------------------------------------------------------------
class ListLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


def test_progress_lines_are_bounded(spotfire_conn_id, spotfire_emulator, make_sbdf):
    log = ListLog()
    hook = SpotfireHook(spotfire_conn_id)
    hook.upload_sbdf_file(
        make_sbdf(200 * KIB), f"{REPORTS}/progress", chunk_size=2 * KIB, progress=ProgressLogger(log, "x")
    )  # 100 chunks
    assert 1 <= len(log.lines) <= 10
    assert "200.0 KiB of 200.0 KiB (100%), 100/100 chunks" in log.lines[-1]  # units that fit, not 0.2 MiB
    assert log.lines[-1].endswith("/s") and " 0.0 " not in log.lines[-1]
