"""Sensor that waits for a Spotfire library upload job started elsewhere to finish."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, Context, PokeReturnValue

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.api.library import UploadJob
from airflow_provider_spotfire.exceptions import SpotfireJobError, SpotfireNotFoundError
from airflow_provider_spotfire.operators.base import (
    SpotfireHookMixin,
    default_deferrable,
    poke_interval_given,
)
from airflow_provider_spotfire.triggers.events import validate_event
from airflow_provider_spotfire.triggers.schedule import PollSchedule


class SpotfireUploadJobSensor(SpotfireHookMixin, BaseSensorOperator):
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

    template_fields: Sequence[str] = ("job_id",)

    def __init__(
        self,
        *,
        job_id: str,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = default_deferrable(),
        poll_schedule: PollSchedule | None = None,
        **kwargs: Any,
    ) -> None:
        # neither given (nor in default_args): the connection's poll_interval extra sets both at execute
        from_connection = poll_schedule is None and not poke_interval_given(kwargs)
        super().__init__(**validate.sensor_timing(kwargs))
        self.poll_schedule = PollSchedule.of(poll_schedule or self.poke_interval)
        self._poll_from_connection = from_connection
        self.job_id = job_id
        self.spotfire_conn_id = spotfire_conn_id
        self.deferrable = deferrable

    def _check(self) -> UploadJob | None:
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
            return job
        if job.cancelled_at:
            raise SpotfireJobError(
                f"Upload job {job_id} was cancelled at {job.cancelled_at}; no library item was written.",
                job_id=job_id,
                status="cancelled",
            )
        self.log.info("Upload job %s is open (%d chunks received).", job_id, len(job.uploaded_chunks or ()))
        return None

    def poke(self, context: Context) -> PokeReturnValue:
        """One status check."""
        job = self._check()
        return PokeReturnValue(is_done=job is not None, xcom_value=job.to_dict() if job else None)

    def execute(self, context: Context) -> Any:
        """Poke or defer (when deferrable, after one immediate check)."""
        if self._poll_from_connection:
            self.poll_schedule = self.connection_poll_schedule(self.poll_schedule)
            self.poke_interval = self.poll_schedule.interval
        if not self.deferrable:
            return super().execute(context)
        job = self._check()
        if job is not None:
            return job.to_dict()
        from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger

        self.defer(
            trigger=SpotfireUploadJobTrigger(
                job_id=str(self.job_id).strip(),
                spotfire_conn_id=self.spotfire_conn_id,
                poll_interval=self.poll_schedule,
                deadline=time.time() + self.timeout if self.timeout else None,
                cancel_on_kill=False,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: the job summary, or the trigger's error."""
        parsed = validate_event(event, job_id=str(self.job_id).strip())
        return {k: v for k, v in parsed.details.items() if k not in ("library_path", "result", "links")}


__all__ = ["SpotfireUploadJobSensor"]
