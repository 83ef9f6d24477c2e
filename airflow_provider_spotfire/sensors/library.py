"""Sensor that waits for a Spotfire library upload job started elsewhere to finish."""

from __future__ import annotations

import time
from typing import Any

from airflow.providers.common.compat.sdk import Context, PokeReturnValue

from airflow_provider_spotfire.exceptions import SpotfireJobError, SpotfireNotFoundError
from airflow_provider_spotfire.sensors.base import SpotfireJobSensor
from airflow_provider_spotfire.triggers.events import validate_event
from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger


class SpotfireUploadJobSensor(SpotfireJobSensor):
    """Waits until an upload job (started elsewhere, by the same API client) is finished.

    Succeeds when the job reports ``finishedAt`` (XCom: the job summary); fails when it was
    cancelled, failed or is unknown to the server. Never cancels the job it watches.

    :param job_id: the upload job id (templated).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_schedule: when deferred, a :class:`~airflow_provider_spotfire.triggers.schedule.PollSchedule`
        instead of a fixed ``poke_interval``. When neither is given, the connection's ``poll_interval``
        extra sets both (else ``poke_interval`` defaults to 60 s).
    :param spotfire_conn_id: the ``spotfire`` connection (the API client that owns the job).
    """

    default_poke_interval = 60.0

    def poke(self, context: Context) -> PokeReturnValue:
        """One status check: done when finished (XCom: the job summary), raise when it cannot finish."""
        job_id = str(self.job_id or "").strip()
        if not job_id:
            raise SpotfireJobError(
                "job_id is empty; pass the id of an upload job (e.g. from the upload task's XCom)."
            )
        try:
            job = self.hook.get_upload_status(job_id)
        except SpotfireNotFoundError as exc:
            raise SpotfireJobError(
                f"Spotfire does not know upload job {job_id} ({exc.description or exc}): it failed, expired, "
                f"or belongs to another API client than the one of connection {self.spotfire_conn_id!r}.",
                job_id=job_id,
                status="unknown",
            ) from None
        if job.finished_at:
            return PokeReturnValue(is_done=True, xcom_value=job.to_dict())
        if job.cancelled_at:
            raise SpotfireJobError(
                f"Upload job {job_id} was cancelled at {job.cancelled_at}; no library item was written.",
                job_id=job_id,
                status="cancelled",
            )
        self.log.info("Upload job %s is open (%d chunks received).", job_id, len(job.uploaded_chunks or ()))
        return PokeReturnValue(is_done=False)

    def wait_trigger(self) -> SpotfireUploadJobTrigger:
        """Polls until the sensor's ``timeout`` (if any); never cancels the job (the sensor does not own it)."""
        return SpotfireUploadJobTrigger(
            job_id=str(self.job_id).strip(),
            spotfire_conn_id=self.spotfire_conn_id,
            poll_interval=self.poll_schedule,
            deadline=time.time() + self.timeout if self.timeout else None,
            cancel_on_kill=False,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: the job summary, or the trigger's error."""
        parsed = validate_event(event, job_id=str(self.job_id).strip())
        return {k: v for k, v in parsed.details.items() if k not in ("library_path", "result", "links")}


__all__ = ["SpotfireUploadJobSensor"]
