"""Assets, producer side: publishing to the Spotfire library updates the asset of the library item.

``SpotfireUploadSbdfOperator`` declares ``spotfire://<conn_id>/<library path>`` as its outlet, so
``example_spotfire_assets_consumer`` runs every time this DAG has written ``/Airflow/Reports/Inventory``.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from airflow.sdk import DAG, task

from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator

with DAG(
    dag_id="example_spotfire_assets_producer",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "spotfire", "assets"],
    doc_md=__doc__,
) as dag:

    @task
    def inventory() -> pd.DataFrame:
        return pd.DataFrame({"sku": ["A-1", "B-2", "C-3"], "on_hand": [12, 0, 7]})

    SpotfireUploadSbdfOperator(
        task_id="publish_inventory",
        library_path="/Airflow/Reports/Inventory",
        source=inventory(),
        overwrite=True,
    )
