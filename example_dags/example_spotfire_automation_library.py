"""Run Automation Services jobs stored in the Spotfire library.

* ``export_finance_report`` starts a job file by library path and waits for it in the triggerer
  (deferrable). Its execution_timeout is passed to the trigger: a job still running then is aborted.
* ``start_sales_refresh`` starts a job without waiting; ``wait_for_sales_refresh`` watches it by the
  job id the first task pushed to XCom (key ``job_id``).

Needs a ``spotfire`` connection ``spotfire_default`` whose API client has the scope
``api.rest.automation-services-job.execute`` and read access to the job files. The poll intervals
are short for a quick demo against the emulator; use 30-60 s against a real server.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
from airflow_provider_spotfire.sensors.automation import SpotfireAutomationJobSensor

with DAG(
    dag_id="example_spotfire_automation_library",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "spotfire", "automation-services"],
    doc_md=__doc__,
) as dag:
    export_finance_report = SpotfireRunAutomationJobOperator(
        task_id="export_finance_report",
        library_path="/Airflow/Jobs/Export Finance Report",
        deferrable=True,
        poll_interval=1,
        execution_timeout=timedelta(minutes=30),
    )

    start_sales_refresh = SpotfireRunAutomationJobOperator(
        task_id="start_sales_refresh",
        library_path="/Airflow/Jobs/Refresh Sales Dashboard",
        wait_for_completion=False,
        retries=2,
    )

    wait_for_sales_refresh = SpotfireAutomationJobSensor(
        task_id="wait_for_sales_refresh",
        job_id="{{ ti.xcom_pull(task_ids='start_sales_refresh', key='job_id') }}",
        poke_interval=1,
        timeout=timedelta(hours=2),
        deferrable=True,
    )

    export_finance_report >> start_sales_refresh >> wait_for_sales_refresh
