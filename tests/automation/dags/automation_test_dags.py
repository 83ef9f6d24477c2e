"""DAGs run with ``dag.test()`` by tests/automation/test_dags.py (against the emulator)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_spotfire.emulator.seed import job_xml
from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
from airflow_provider_spotfire.sensors.automation import SpotfireAutomationJobSensor

START = datetime(2025, 1, 1)
NIGHTLY_BATCH = "/Airflow/Jobs/Nightly Batch"  # runs for an hour
EXPORT_FINANCE = "/Airflow/Jobs/Export Finance Report"  # 0.5 s


class CrashOnFirstTryOperator(SpotfireRunAutomationJobOperator):
    """Simulates losing the worker on try 1 while the job runs (after its id was stored)."""

    def poll_until_complete(self, external_id: Any, context: Any) -> dict[str, Any]:
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated worker loss while waiting for the job")
        return super().poll_until_complete(external_id, context)


for deferrable in (False, True):
    mode = "deferrable" if deferrable else "blocking"
    with DAG(f"as_test_success_{mode}", schedule=None, start_date=START, catchup=False):
        from_file = SpotfireRunAutomationJobOperator(
            task_id="from_xml_file", job_xml="jobs/quick_job.xml", deferrable=deferrable, poll_interval=0.2
        )
        from_library = SpotfireRunAutomationJobOperator(
            task_id="from_library",
            library_path=EXPORT_FINANCE,
            wait_for_completion=False,
            deferrable=deferrable,
        )
        sensor = SpotfireAutomationJobSensor(
            task_id="wait_library_job",
            job_id="{{ ti.xcom_pull(task_ids='from_library', key='job_id') }}",
            poke_interval=0.2,
            timeout=60,
            deferrable=deferrable,
        )
        from_file >> from_library >> sensor

    with DAG(f"as_test_timeout_{mode}", schedule=None, start_date=START, catchup=False):
        SpotfireRunAutomationJobOperator(
            task_id="too_slow",
            library_path=NIGHTLY_BATCH,
            deferrable=deferrable,
            poll_interval=0.2,
            execution_timeout=timedelta(seconds=1.5),
        )

    with DAG(f"as_test_resume_{mode}", schedule=None, start_date=START, catchup=False):
        CrashOnFirstTryOperator(
            task_id="resumed",
            job_xml=job_xml("/Airflow/Reports/Sales", 'queue="0.2" duration="1.5" outcome="Finished"'),
            deferrable=deferrable,
            poll_interval=0.2,
            retries=1,
            retry_delay=timedelta(0),
        )
