"""DAGs run with ``dag.test()`` by tests/library/test_library_dags.py (against the emulator)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from airflow.sdk import DAG, task

from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.sensors.library import SpotfireUploadJobSensor

START = datetime(2025, 1, 1)


def big_frame() -> pd.DataFrame:
    """About 4 MB of SBDF: many small chunks, slow under the emulator's added latency."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.random(250_000), "y": rng.integers(0, 1000, 250_000)})


for deferrable in (False, True):
    mode = "deferrable" if deferrable else "blocking"
    with DAG(f"library_test_upload_{mode}", schedule=None, start_date=START, catchup=False):

        @task
        def make_sales() -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "region": ["north", "south", "east", "west"],
                    "amount": [10.5, 20.25, 30.0, 40.125],
                    "day": pd.to_datetime(["2025-01-01"] * 4),
                }
            )

        upload = SpotfireUploadSbdfOperator(
            task_id="upload",
            library_path="/Airflow/Reports/sales_{{ ds_nodash }}_" + mode,
            source=make_sales(),
            overwrite=True,
            description="Sales of {{ ds }}",
            keywords=["sales", "{{ dag.dag_id }}"],
            chunk_size=64,
            deferrable=deferrable,
            poll_interval=0.2,
        )
        wait = SpotfireUploadJobSensor(
            task_id="wait",
            job_id="{{ ti.xcom_pull(task_ids='upload')['job_id'] }}",
            poke_interval=0.2,
            timeout=30,
            deferrable=deferrable,
        )
        upload >> wait

with DAG("library_test_timeout", schedule=None, start_date=START, catchup=False):
    SpotfireUploadSbdfOperator(
        task_id="too_slow",
        library_path="/Airflow/Reports/too_slow",
        source=big_frame,
        chunk_size=16 * 1024,
        parallelism=1,
        execution_timeout=timedelta(seconds=3),
        deferrable=False,
    )
