"""Publish a SQL query's result to the Spotfire library, streamed: it never has to fit in memory.

* ``prepare_orders`` stands in for a warehouse: it fills a SQLite table (the stdlib driver) with
  orders. Any Airflow SQL connection works the same way (PostgreSQL, Snowflake, MySQL, ...: every
  hook of ``apache-airflow-providers-common-sql``).
* ``publish_orders`` runs ``sql/orders_by_region.sql`` (a template beside this file) on the
  connection ``orders_db``, fetches the result in batches of 50,000 rows, maps the column types
  (logged, and returned in the XCom) and streams the batches as SBDF slices into upload chunks of
  ``/Airflow/Reports/orders_<ds_nodash>``. With ``deferrable=True`` it waits for the upload job in
  the triggerer.

Needs ``pip install 'airflow-provider-spotfire[sql]'``, a ``spotfire`` connection
``spotfire_default`` (scope ``api.rest.library.upload``, write access to ``/Airflow/Reports``) and the
SQLite connection, e.g.::

    export AIRFLOW_CONN_ORDERS_DB='sqlite:///tmp/example_orders.db'   # sqlite:// + the absolute path
    python -m airflow_provider_spotfire.emulator --port 8080   # prints an AIRFLOW_CONN_SPOTFIRE_DEFAULT line
    airflow dags test example_spotfire_sql_to_spotfire
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_spotfire.transfers.sql_to_spotfire import SqlToSpotfireOperator

ORDERS_CONN_ID = "orders_db"

with DAG(
    dag_id="example_spotfire_sql_to_spotfire",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "spotfire", "library", "sql"],
    template_searchpath=[__file__.rsplit("/", 1)[0] + "/sql"],
    doc_md=__doc__,
) as dag:

    @task
    def prepare_orders() -> int:
        """Fill the example SQLite table (idempotent): 10,000 orders over four regions."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(ORDERS_CONN_ID).get_hook()
        assert isinstance(hook, DbApiHook)
        regions = ["North", "South", "East", "West"]
        rows = [
            (i, regions[i % 4], (i % 97) * 1.25, f"2025-01-{1 + i % 28:02d} 12:00:00") for i in range(10_000)
        ]
        hook.run("DROP TABLE IF EXISTS orders")
        hook.run("CREATE TABLE orders (id INTEGER, region TEXT, amount REAL, booked_at TEXT)")
        hook.insert_rows("orders", rows, target_fields=["id", "region", "amount", "booked_at"])
        return len(rows)

    publish_orders = SqlToSpotfireOperator(
        task_id="publish_orders",
        conn_id=ORDERS_CONN_ID,
        sql="orders_by_region.sql",
        library_path="/Airflow/Reports/orders_{{ ds_nodash }}",
        overwrite=True,
        description="Orders by region for {{ ds }}, from {{ conn.orders_db.host }}.",
        keywords=["orders", "sql", "airflow"],
        batch_rows=50_000,
        deferrable=True,
        poll_interval=1,
        execution_timeout=timedelta(minutes=30),
    )

    prepare_orders() >> publish_orders
