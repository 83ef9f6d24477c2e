"""A deferrable task whose connection lives only in the metadata DB (run by tests/test_bad_inputs.py)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator

with DAG("bad_inputs_db_only_connection", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    SpotfireRunAutomationJobOperator(
        task_id="deferred_job",
        library_path="/Airflow/Jobs/Nightly Batch",  # runs an hour: only an abort ends it
        deferrable=True,
        poll_interval=0.2,
        spotfire_conn_id="spotfire_db_only",
    )
