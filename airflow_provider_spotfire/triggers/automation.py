"""Trigger that waits for an Automation Services job in the triggerer (polls only; never starts a job)."""

from __future__ import annotations

from typing import Any

from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.api.automation import ExecutionStatus, JobOutcome, JobWatch, failure_message
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook
from airflow_provider_spotfire.triggers.base import SpotfirePollingTrigger
from airflow_provider_spotfire.triggers.events import EventStatus, JobState, SpotfireTriggerEvent

# JobOutcome (what outcome_of says a StatusCode means) -> the events' job state
_STATE_OF_OUTCOME = {
    JobOutcome.SUCCESS: JobState.FINISHED,
    JobOutcome.FAILURE: JobState.FAILED,
    JobOutcome.UNDETERMINED: JobState.UNDETERMINED,
    JobOutcome.WAIT: JobState.WAITING,
}


class SpotfireAutomationJobTrigger(SpotfirePollingTrigger):
    """Polls an Automation Services job until it finishes, fails or passes its deadline.

    Fires exactly one event (see :func:`~airflow_provider_spotfire.triggers.events.validate_event`;
    ``remote_state`` is the StatusCode): ``success`` (Finished), ``failed`` (Failed, Canceled,
    Missing, NotSet or an unknown code, with the server's Message), ``timeout`` (``deadline``
    passed: checked once more, then the job is aborted when ``abort_unfinished``) or ``error``
    (the status could not be read). :meth:`on_kill` aborts the job when ``abort_on_kill``;
    :meth:`cleanup` (a triggerer restart) never does. Polling as in
    :class:`~airflow_provider_spotfire.triggers.base.SpotfirePollingTrigger`.

    :param polling: ``poll_interval`` (default 15 s), ``deadline``, ``started_at``, ``task_label``
        as in the base.
    :param abort_unfinished: abort the job when the wait ends without an outcome (deadline, NotSet).
    :param abort_on_kill: abort the job when a user kills the deferred task.
    :param last_status: the StatusCode already logged by the task (only changes are logged).
    """

    job_kind = "Automation Services job"
    stopped_word = "aborted"

    def __init__(
        self,
        job_id: str,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        *,
        abort_unfinished: bool = True,
        abort_on_kill: bool = True,
        last_status: str | None = None,
        **polling: Any,
    ) -> None:
        super().__init__(job_id, spotfire_conn_id, **polling)
        self.abort_unfinished = abort_unfinished
        self.abort_on_kill = abort_on_kill
        self.last_status = last_status
        self.watch = JobWatch(job_id, last_status=last_status, logger=self.log)
        self.remote_state = last_status
        self._status: ExecutionStatus | None = None

    def extra_kwargs(self) -> dict[str, Any]:
        return {
            "abort_unfinished": self.abort_unfinished,
            "abort_on_kill": self.abort_on_kill,
            "last_status": self.last_status,
        }

    def stops_at_deadline(self) -> bool:
        return self.abort_unfinished

    def stops_on_kill(self) -> bool:
        return self.abort_on_kill

    def event_details(self) -> dict[str, Any]:
        return {"history": self.watch.history}

    async def poll(self, hook: SpotfireAsyncHook) -> SpotfireTriggerEvent | None:
        """One status read; the final event once the StatusCode has an outcome."""
        status = await hook.get_automation_job_status(self.job_id, missing_ok=True)
        self.watch.observe(status)
        self.remote_state = status.status_code
        self._status = status
        outcome = status.outcome
        if outcome is JobOutcome.WAIT:
            return None
        if outcome is JobOutcome.UNDETERMINED and self.abort_unfinished:
            await self.stop(f"{self.label()} gave up on it: status {status.status_code}")
        message = status.message if outcome is JobOutcome.SUCCESS else failure_message(status)
        kind: EventStatus = "success" if outcome is JobOutcome.SUCCESS else "failed"
        return self.event(kind, _STATE_OF_OUTCOME[outcome], message, status=status.to_dict())

    async def deadline_event(self) -> SpotfireTriggerEvent:
        event = await super().deadline_event()
        if self._status is not None:
            event.details["status"] = self._status.to_dict()
        return event

    async def stop_job(self, hook: SpotfireAsyncHook, reason: str) -> None:
        await hook.abort_automation_job(self.job_id, reason)


__all__ = ["SpotfireAutomationJobTrigger"]
