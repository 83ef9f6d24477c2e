"""Build a pandas DataFrame in a TaskFlow task and publish it to the Spotfire library as SBDF.

* ``extract_sales`` returns a DataFrame; Airflow hands it to the next task through XCom
  (serialising a DataFrame needs ``pyarrow`` on the workers).
* ``upload_sales`` converts it to SBDF (a temporary file, removed afterwards) and uploads it in
  chunks to ``/Airflow/Reports/sales_<ds_nodash>``, replacing an earlier upload of the same day.
  With ``deferrable=True`` it sends the chunks on the worker and waits for the upload job in the
  triggerer. Its XCom holds the job id, size, sha256 and the conversion notes; the task's
  "Spotfire library item" link opens the item's folder.
* ``summarize`` logs what was published.

Needs a ``spotfire`` connection ``spotfire_default`` whose API client has the scope
``api.rest.library.upload`` and write access to ``/Airflow/Reports``. To try it against the
emulator::

    python -m airflow_provider_spotfire.emulator --port 8080   # prints an AIRFLOW_CONN_... line
    export AIRFLOW_CONN_SPOTFIRE_DEFAULT='...'                   # the line it printed
    airflow dags test example_spotfire_upload
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from airflow.sdk import DAG, task

from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator

with DAG(
    dag_id="example_spotfire_upload",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "spotfire", "library"],
    doc_md=__doc__,
) as dag:

    @task
    def extract_sales(ds: str | None = None) -> pd.DataFrame:
        """Stand-in for a warehouse query: one row per region for the run's day."""
        day = pd.Timestamp(ds or "2025-01-01", tz="Europe/Stockholm")
        return pd.DataFrame(
            {
                "region": pd.array(["North", "South", "East", "West"], dtype="string"),
                "orders": pd.array([120, 98, 143, 77], dtype="int16"),  # written as SBDF Integer
                "revenue": [10_250.5, 8_730.0, 12_999.99, 6_120.25],
                "booked_at": [day + pd.Timedelta(h, unit="h") for h in (9, 10, 11, 12)],  # converted to UTC
            }
        )

    upload_sales = SpotfireUploadSbdfOperator(
        task_id="upload_sales",
        library_path="/Airflow/Reports/sales_{{ ds_nodash }}",
        source=extract_sales(),
        overwrite=True,
        description="Daily sales by region for {{ ds }}, published by Airflow run {{ run_id }}.",
        keywords=["sales", "daily", "airflow"],
        timezone="UTC",
        deferrable=True,
        poll_interval=1,
        execution_timeout=timedelta(minutes=30),
    )

    @task
    def summarize(result: dict[str, Any]) -> str:
        """Log what was published (the operator's XCom)."""
        line = (
            f"{result['library_path']}: {result['rows']} rows, {result['bytes']} bytes in "
            f"{result['chunks']} chunk(s), sha256 {result['sha256'][:12]}..., finished {result['finished_at']}"
        )
        for note in result["notes"]:
            print("conversion note:", note)
        print(line)
        return line

    summarize(upload_sales.output)
