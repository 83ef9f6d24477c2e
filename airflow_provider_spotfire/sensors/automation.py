"""Wait for an Automation Services job that is already running (started elsewhere or by another task)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, Context, PokeReturnValue

from airflow_provider_spotfire.api.automation import JobOutcome, JobWatch, failure_message, status_from_event
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireJobError
from airflow_provider_spotfire.sensors.base import SpotfireJobSensor
from airflow_provider_spotfire.triggers.automation import SpotfireAutomationJobTrigger
from airflow_provider_spotfire.triggers.events import validate_event


class SpotfireAutomationJobSensor(SpotfireJobSensor):
    """Succeeds when an Automation Services job is Finished; fails with the server's message otherwise.

    Same outcome table as :class:`~.operators.automation.SpotfireRunAutomationJobOperator`: Finished
    succeeds, Failed/Canceled/Missing/NotSet fail, Queued/InProgress keep waiting. The sensor
    does not own the job, so it never aborts it (not on timeout, not when killed).

    Works in ``poke`` and ``reschedule`` mode, or ``deferrable`` (waits in the triggerer until the
    sensor's ``timeout``). The final ExecutionStatus dict is pushed as the return value.

    :param job_id: the job id (templated), e.g. ``{{ ti.xcom_pull(task_ids='start', key='job_id') }}``.
    :param deferrable: wait in the triggerer instead of poking from a worker.
    :param poll_schedule: when deferred, a :class:`~airflow_provider_spotfire.triggers.schedule.PollSchedule`
        instead of a fixed ``poke_interval`` (e.g. backing off as the job ages). When neither is given,
        the connection's ``poll_interval`` extra sets both (else ``poke_interval`` defaults to 30 s).
    :param spotfire_conn_id: the ``spotfire`` connection.
    """

    ui_color = "#d6e8f5"
    default_poke_interval = 30.0
    _watch: JobWatch | None = None

    def _job_id(self) -> str:
        job_id = str(self.job_id or "").strip()
        if not job_id or job_id == "None":
            raise SpotfireConfigurationError(
                f"{type(self).__name__} {self.task_id!r} got no job_id; pass the id returned by the "
                "operator that started the job (XCom key 'job_id')."
            )
        return job_id

    def poke(self, context: Context) -> PokeReturnValue:
        """One status request: done when Finished, raise on a failed outcome, wait otherwise."""
        job_id = self._job_id()
        if self._watch is None or self._watch.job_id != job_id:
            self._watch = JobWatch(job_id, logger=self.log)
        status = self.hook.get_automation_job_status(job_id, missing_ok=True)
        self._watch.observe(status)
        if status.outcome is JobOutcome.SUCCESS:
            return PokeReturnValue(is_done=True, xcom_value=status.to_dict())
        if status.outcome in (JobOutcome.FAILURE, JobOutcome.UNDETERMINED):
            raise SpotfireJobError(failure_message(status), job_id=job_id, status=status.status_code)
        return PokeReturnValue(is_done=False)

    def wait_trigger(self) -> SpotfireAutomationJobTrigger:
        """Polls until the sensor's ``timeout``; never aborts the job (the sensor does not own it)."""
        return SpotfireAutomationJobTrigger(
            job_id=self._job_id(),
            spotfire_conn_id=self.spotfire_conn_id,
            poll_interval=self.poll_schedule,
            deadline=time.time() + self.timeout,
            abort_unfinished=False,
            abort_on_kill=False,
            last_status=self._watch.last_status if self._watch else None,
        )

    def defer_timeout(self) -> timedelta:
        """A backstop only: the trigger fires its own timeout event at the sensor's ``timeout``."""
        return timedelta(seconds=self.timeout + 300)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: the final status, AirflowSensorTimeout, or the job's error."""
        if isinstance(event, dict) and event.get("status") == "timeout":
            raise AirflowSensorTimeout(str(event.get("message")))
        parsed = validate_event(event, job_id=self._job_id())
        status = status_from_event(parsed.job_id, parsed.remote_state, parsed.details)
        self.log.info("Automation Services job %s finished: %s", parsed.job_id, status.describe())
        return status.to_dict()


__all__ = ["SpotfireAutomationJobSensor"]
