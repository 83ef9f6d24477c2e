"""Operator, sensor and trigger inside real DAG runs (``dag.test()``), against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.automation.conftest import as_job, as_jobs, as_starts, requires_resumable
from tests.helpers import EXAMPLE_DAGS, run_dag, task_states, xcom_value

DAGS = Path(__file__).parent / "dags"
TEST_DAGS = DAGS / "automation_test_dags.py"

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.mark.parametrize("mode", ["blocking", "deferrable"])
def test_jobs_from_xml_file_and_library_with_sensor(spotfire_conn_id, spotfire_emulator, mode):
    dr = run_dag(TEST_DAGS, f"as_test_success_{mode}", resources=("jobs",))
    assert task_states(dr) == {
        "from_xml_file": "success",
        "from_library": "success",
        "wait_library_job": "success",
    }
    result = xcom_value(dr, "from_xml_file")
    assert result["StatusCode"] == "Finished" and result["JobId"] == xcom_value(dr, "from_xml_file", "job_id")
    xml_job = as_job(spotfire_emulator, result["JobId"])
    assert f"/exports/sales-{dr.logical_date:%Y-%m-%d}-from_xml_file.pdf" in xml_job["source"]["value"]
    library_job_id = xcom_value(dr, "from_library", "job_id")
    assert xcom_value(dr, "wait_library_job")["JobId"] == library_job_id
    assert xcom_value(dr, "from_library", "spotfire_automation_job_url").endswith(
        "/spotfire/library#/Airflow/Jobs/Export%20Finance%20Report"
    )
    assert as_starts(spotfire_emulator) == 2


@pytest.mark.parametrize(
    ("mode", "reason"), [("blocking", "was killed"), ("deferrable", "exceeded its execution_timeout")]
)
def test_execution_timeout_fails_the_task_and_aborts_the_job(
    spotfire_conn_id, spotfire_emulator, mode, reason
):
    dr = run_dag(TEST_DAGS, f"as_test_timeout_{mode}", resources=("jobs",))
    assert task_states(dr) == {"too_slow": "failed"}
    (job,) = as_jobs(spotfire_emulator)
    record = as_job(spotfire_emulator, job.get("jobId") or job["job_id"])
    assert record["status"] == "Canceled"
    assert record["abortReason"].startswith(f"Airflow task as_test_timeout_{mode}.too_slow (run ")
    assert reason in record["abortReason"]


@requires_resumable
@pytest.mark.parametrize("mode", ["blocking", "deferrable"])
def test_retry_resumes_the_running_job(spotfire_conn_id, spotfire_emulator, mode):
    dr = run_dag(TEST_DAGS, f"as_test_resume_{mode}", resources=("jobs",))
    assert task_states(dr) == {"resumed": "success"}
    assert as_starts(spotfire_emulator) == 1  # the retry watched the job of try 1
    assert xcom_value(dr, "resumed")["StatusCode"] == "Finished"


def test_example_library_dag(spotfire_conn_id, spotfire_emulator):
    dr = run_dag(
        EXAMPLE_DAGS / "example_spotfire_automation_library.py", "example_spotfire_automation_library"
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)


def test_example_xml_dag(spotfire_conn_id, spotfire_emulator):
    dr = run_dag(
        EXAMPLE_DAGS / "example_spotfire_automation_xml.py",
        "example_spotfire_automation_xml",
        resources=("jobs",),
    )
    assert task_states(dr) == {"export_sales_pdf": "success"}
    job_id = xcom_value(dr, "export_sales_pdf", "job_id")
    assert (
        f"/exports/sales-{dr.logical_date:%Y-%m-%d}.pdf"
        in as_job(spotfire_emulator, job_id)["source"]["value"]
    )
