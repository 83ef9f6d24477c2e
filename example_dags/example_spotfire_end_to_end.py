"""End to end: publish a DataFrame to the Spotfire library, refresh a dashboard, keep licenses right.

1. ``build_sales`` (TaskFlow) returns a pandas DataFrame. It has an int16 column and tz-aware
   timestamps: the upload normalises them for SBDF (Integer; UTC) and logs what it did.
2. ``publish_sales`` writes it as SBDF to ``/Airflow/Reports/Sales`` (chunked, digested, then
   deferred: the triggerer waits for the upload job to be finished).
3. ``refresh_sales_dashboard`` runs the Automation Services job stored in the library that
   refreshes the dashboard built on that data, waiting in the triggerer.
4. ``sales_emea_licenses`` makes sure the Sales EMEA group holds exactly the declared licenses.

This is the DAG ``bash scripts/demo.sh`` runs against the embedded emulator; the group id is the
emulator's seeded "Sales EMEA" group. Against a real server, use your own ids and paths and a
poll interval of 30 s or more.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from airflow.sdk import DAG, task

from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.operators.licenses import SpotfireSyncGroupLicensesOperator

SALES_EMEA_GROUP_ID = "2f0b810c-d76c-4f48-87ee-5454f1a14d78"

with DAG(
    dag_id="example_spotfire_end_to_end",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "spotfire"],
    doc_md=__doc__,
) as dag:

    @task
    def build_sales() -> pd.DataFrame:
        days = pd.date_range("2026-01-01", periods=90, freq="D", tz="Europe/Stockholm")
        return pd.DataFrame(
            {
                "day": days,
                "region": ["EMEA", "APJ", "AMER"] * 30,
                "units": pd.Series(range(90), dtype="int16"),
                "revenue": [round(1000 + 12.5 * i, 2) for i in range(90)],
                "promoted": [i % 7 == 0 for i in range(90)],
            }
        )

    publish_sales = SpotfireUploadSbdfOperator(
        task_id="publish_sales",
        library_path="/Airflow/Reports/Sales",
        source=build_sales(),
        overwrite=True,
        description="Daily sales by region, published by Airflow",
        keywords=["airflow", "sales"],
        deferrable=True,
        poll_interval=1,
    )

    refresh_sales_dashboard = SpotfireRunAutomationJobOperator(
        task_id="refresh_sales_dashboard",
        library_path="/Airflow/Jobs/Refresh Sales Dashboard",
        deferrable=True,
        poll_interval=1,
        execution_timeout=timedelta(minutes=30),
    )

    sales_emea_licenses = SpotfireSyncGroupLicensesOperator(
        task_id="sales_emea_licenses",
        group_id=SALES_EMEA_GROUP_ID,
        licenses={"Spotfire.Dxp.WebPlayer": None, "Spotfire.Dxp.BusinessAuthor": None},
    )

    publish_sales >> refresh_sales_dashboard
