"""8 parallel mapped tasks + 2 deferrable jobs, all on one refresh-token connection (full-stack test DAG)."""

from __future__ import annotations

import time

from airflow.sdk import dag, task

from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator

CONN_ID = "spotfire_user"
TASK_SECONDS = 8.0
JOB = """<?xml version="1.0" encoding="utf-8"?>
<?spotfire-emulator queue="0" duration="10" outcome="Finished"?>
<as:Job xmlns:as="urn:tibco:spotfire.dxp.automation">
  <as:JobDefinition xmlns="urn:tibco:spotfire.dxp.automation.tasks">
    <as:Tasks>
      <OpenAnalysisFromLibrary>
        <as:Title>Open Analysis from Library</as:Title>
        <AnalysisPath>/Airflow/Reports/Sales</AnalysisPath>
        <ConfigurationBlock />
      </OpenAnalysisFromLibrary>
    </as:Tasks>
  </as:JobDefinition>
</as:Job>
"""


@dag(schedule=None, catchup=False, max_active_runs=3, max_active_tasks=16, tags=["spotfire", "test"])
def spotfire_refresh_tokens():
    @task(retries=0)
    def call_spotfire(index: int) -> int:
        """API calls for TASK_SECONDS, across several access-token lifetimes."""
        from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

        hook = SpotfireHook(CONN_ID)
        calls = 0
        deadline = time.monotonic() + TASK_SECONDS
        while time.monotonic() < deadline:
            hook.list_licenses()
            calls += 1
            time.sleep(0.25)
        return calls

    call_spotfire.expand(index=list(range(8)))
    for n in range(2):
        SpotfireRunAutomationJobOperator(
            task_id=f"deferred_job_{n}",
            job_xml=JOB,
            deferrable=True,
            poll_interval=1,
            spotfire_conn_id=CONN_ID,
            retries=0,
        )


spotfire_refresh_tokens()
