"""Run an Automation Services job whose definition is kept beside the DAG (``jobs/export_report.xml``).

``job_xml`` is a templated field with ``.xml`` as template extension: Airflow reads the file
(relative to the DAG file or ``template_searchpath``), renders it with Jinja (``{{ ds }}`` and
friends work inside the job) and posts it to ``/spotfire/api/rest/as/job/start-content``.
The job is waited for on the worker (not deferrable); killing the task aborts the job.

Needs a ``spotfire`` connection ``spotfire_default`` whose API client has the scope
``api.rest.automation-services-job.execute``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator

with DAG(
    dag_id="example_spotfire_automation_xml",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "spotfire", "automation-services"],
    doc_md=__doc__,
) as dag:
    SpotfireRunAutomationJobOperator(
        task_id="export_sales_pdf",
        job_xml="jobs/export_report.xml",
        deferrable=False,
        poll_interval=1,
        execution_timeout=timedelta(minutes=20),
        retries=1,
    )
