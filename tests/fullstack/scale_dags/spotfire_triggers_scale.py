"""DAG of the triggerer restart/HA test: many deferred Automation Services jobs and upload-job waits.

Every AS job runs for ``JOB_SECONDS`` on the emulator clock (the test advances that clock to end them
all at once); every tenth one ends Failed. The upload jobs are opened by the test (chunks sent, not
finished) and passed in the run's conf; the test finishes or cancels them at the end.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spotfire.emulator.seed import job_xml
from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
from airflow_provider_spotfire.sensors.library import SpotfireUploadJobSensor

DAG_ID = "spotfire_triggers_scale"
N_JOBS = 100
JOB_SECONDS = 900
POLL_SECONDS = 2


def outcome_of_index(i: int) -> str:
    return "Failed" if i % 10 == 9 else "Finished"


JOB_XMLS = [
    job_xml(
        "/Airflow/Reports/Sales",
        f'queue="0" duration="{JOB_SECONDS}" outcome="{outcome_of_index(i)}" message="scale job {i}"',
    )
    for i in range(N_JOBS)
]

with DAG(
    DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=256,
    tags=["fullstack", "scale"],
):

    @task
    def upload_job_ids(**context) -> list[str]:
        return list(context["dag_run"].conf["upload_jobs"])

    SpotfireRunAutomationJobOperator.partial(
        task_id="as_job", deferrable=True, poll_interval=POLL_SECONDS, retries=0
    ).expand(job_xml=JOB_XMLS)

    SpotfireUploadJobSensor.partial(
        task_id="upload_wait", deferrable=True, poke_interval=POLL_SECONDS, timeout=3600, retries=0
    ).expand(job_id=upload_job_ids())
