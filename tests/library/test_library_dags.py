"""The upload operator and sensor inside real DAG runs (``dag.test()``), against the emulator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from airflow_provider_spotfire.links import SpotfireLibraryItemLink
from tests.helpers import EXAMPLE_DAGS, run_dag, task_states, xcom_value
from tests.library.conftest import item_bytes, items_at, upload_jobs

DAGS = Path(__file__).parent / "dags"
TEST_DAGS = DAGS / "library_test_dags.py"

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.mark.parametrize("mode", ["blocking", "deferrable"])
def test_taskflow_dataframe_upload_and_sensor(spotfire_conn_id, spotfire_emulator, mode):
    dr = run_dag(TEST_DAGS, f"library_test_upload_{mode}")
    assert task_states(dr) == {"make_sales": "success", "upload": "success", "wait": "success"}

    path = f"/Airflow/Reports/sales_{dr.logical_date:%Y%m%d}_{mode}"  # templated library_path
    result = xcom_value(dr, "upload")
    assert result["library_path"] == path and result["rows"] == 4 and result["columns"] == 3
    assert result["finished_at"] and result["chunks"] > 1
    content = item_bytes(spotfire_emulator, path)
    assert hashlib.sha256(content).hexdigest() == result["sha256"]
    (item,) = items_at(spotfire_emulator, path)
    assert item["description"] == f"Sales of {dr.logical_date:%Y-%m-%d}"
    assert item["keywords"] == ["sales", f"library_test_upload_{mode}"]
    assert xcom_value(dr, "upload", SpotfireLibraryItemLink.xcom_key).endswith(path)
    assert xcom_value(dr, "wait")["job_id"] == result["job_id"]
    assert upload_jobs(spotfire_emulator, "open") == []


def test_execution_timeout_cancels_the_upload_job(spotfire_conn_id, spotfire_emulator):
    spotfire_emulator.set_config(latency_ms=30)
    dr = run_dag(TEST_DAGS, "library_test_timeout")
    assert task_states(dr) == {"too_slow": "failed"}
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "cancelled" and job["cancelledAt"]
    assert items_at(spotfire_emulator, "/Airflow/Reports/too_slow") == []


def test_example_dag(spotfire_conn_id, spotfire_emulator):
    dr = run_dag(EXAMPLE_DAGS / "example_spotfire_upload.py", "example_spotfire_upload")
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    result = xcom_value(dr, "upload_sales")
    assert (
        hashlib.sha256(item_bytes(spotfire_emulator, result["library_path"])).hexdigest() == result["sha256"]
    )
