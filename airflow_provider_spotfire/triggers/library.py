"""Trigger that waits for a Spotfire library upload job to be finished (polls only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.api.library import UploadJob
from airflow_provider_spotfire.exceptions import SpotfireNotFoundError
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook
from airflow_provider_spotfire.triggers.base import SpotfirePollingTrigger
from airflow_provider_spotfire.triggers.events import JobState, SpotfireTriggerEvent

DEFAULT_POLL_INTERVAL = 5.0
_LINK_NAMES = ("getStatusLinkRel", "getStatusLinkAbs", "cancelLinkRel", "cancelLinkAbs")


class SpotfireUploadJobTrigger(SpotfirePollingTrigger):
    """Polls an upload job until ``finishedAt`` (success), ``cancelledAt`` or an error (failure).

    Fires one :class:`~airflow_provider_spotfire.triggers.events.SpotfireTriggerEvent`
    (``remote_state``: ``finished``, ``cancelled``, ``open`` or ``unknown``). ``deadline`` ends the
    wait with a ``timeout`` event (the task then cancels the job it owns). ``on_kill`` cancels the
    job only when ``cancel_on_kill`` is set (the operator's own job, not a job a sensor merely
    watches); ``cleanup`` never touches it. ``result`` (JSON-safe, what the worker already knows)
    is handed back unchanged in the event's ``details["result"]``, so the task resumes with it even
    where the defer kwargs are not kept (``dag.test()``). Polling as in
    :class:`~airflow_provider_spotfire.triggers.base.SpotfirePollingTrigger` (``polling``:
    ``poll_interval`` -- default 5 s --, ``deadline``, ``started_at``, ``task_label``).
    """

    job_kind = "upload job"
    stopped_word = "cancelled"

    def __init__(
        self,
        job_id: str,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        *,
        links: Mapping[str, str] | None = None,
        library_path: str | None = None,
        cancel_on_kill: bool = False,
        result: Mapping[str, Any] | None = None,
        **polling: Any,
    ) -> None:
        polling.setdefault("poll_interval", DEFAULT_POLL_INTERVAL)
        super().__init__(job_id, spotfire_conn_id, **polling)
        self.links = {k: str(v) for k, v in (links or {}).items() if k in _LINK_NAMES and v}
        self.library_path = library_path
        self.cancel_on_kill = cancel_on_kill
        self.result = dict(result) if result is not None else None
        self.remote_state = "open"

    def extra_kwargs(self) -> dict[str, Any]:
        return {
            "links": dict(self.links),
            "library_path": self.library_path,
            "cancel_on_kill": self.cancel_on_kill,
            "result": self.result,
        }

    @property
    def job(self) -> UploadJob:
        """The job reference (with the links the server gave) used for every request."""
        return UploadJob(job_id=self.job_id, links=self.links)

    @property
    def what(self) -> str:
        return f"upload job {self.job_id}" + (f" ({self.library_path})" if self.library_path else "")

    def stops_on_kill(self) -> bool:
        return self.cancel_on_kill

    def event_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.library_path:
            details["library_path"] = self.library_path
        if self.result is not None:
            details["result"] = self.result
            details["links"] = dict(self.links)
        return details

    async def poll(self, hook: SpotfireAsyncHook) -> SpotfireTriggerEvent | None:
        """One status read: finished, cancelled, unknown to the server, or still open."""
        try:
            job = await hook.get_upload_status(self.job)
        except SpotfireNotFoundError as exc:
            self.remote_state = "unknown"
            return self.event(
                "failed",
                JobState.FAILED,
                f"Spotfire no longer knows {self.what}: it failed on the server or expired. "
                f"{exc.description or exc}",
            )
        if job.finished_at:
            self.remote_state = "finished"
            message = f"{self.what} finished at {job.finished_at}."
            return self.event("success", JobState.FINISHED, message, **job.to_dict())
        if job.cancelled_at:
            self.remote_state = "cancelled"
            message = f"{self.what} was cancelled at {job.cancelled_at} before it finished; no item written."
            return self.event("failed", JobState.FAILED, message, **job.to_dict())
        self.log.info(
            "%s is open (%d chunks on the server); waiting.", self.what, len(job.uploaded_chunks or ())
        )
        return None

    async def deadline_event(self) -> SpotfireTriggerEvent:
        owned = " The task cancels it." if self.cancel_on_kill else ""
        message = f"{self.what} was not finished before the task's deadline.{owned}"
        return self.event("timeout", JobState.WAITING, message)

    async def stop_job(self, hook: SpotfireAsyncHook, reason: str) -> None:
        try:
            await hook.cancel_upload_job(self.job)
        except SpotfireNotFoundError:
            self.log.info("%s is already gone; nothing to cancel.", self.what)


__all__ = ["SpotfireUploadJobTrigger"]
