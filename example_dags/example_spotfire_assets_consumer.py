"""Assets, consumer side: refresh the inventory dashboard whenever new inventory data is in the library.

Scheduled on the asset ``spotfire://spotfire_default/Airflow/Reports/Inventory`` that
``example_spotfire_assets_producer`` updates.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_spotfire.assets import create_asset
from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator

INVENTORY = create_asset(conn_id="spotfire_default", library_path="/Airflow/Reports/Inventory")

with DAG(
    dag_id="example_spotfire_assets_consumer",
    schedule=[INVENTORY],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "spotfire", "assets"],
    doc_md=__doc__,
) as dag:
    SpotfireRunAutomationJobOperator(
        task_id="refresh_inventory_dashboard",
        library_path="/Airflow/Jobs/Refresh Sales Dashboard",
        poll_interval=1,
    )
