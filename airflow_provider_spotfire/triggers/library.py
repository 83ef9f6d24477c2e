"""Trigger that waits for a Spotfire library upload job to be finished (polls only)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.api.library import UploadJob, is_transient
from airflow_provider_spotfire.exceptions import SpotfireError, SpotfireNotFoundError
from airflow_provider_spotfire.triggers.events import SpotfireTriggerEvent

DEFAULT_POLL_INTERVAL = 5.0
ON_KILL_TIMEOUT = 30.0
_LINK_NAMES = ("getStatusLinkRel", "getStatusLinkAbs", "cancelLinkRel", "cancelLinkAbs")


class SpotfireUploadJobTrigger(BaseTrigger):
    """Polls an upload job until ``finishedAt`` (success), ``cancelledAt`` or an error (failure).

    Fires one :class:`~airflow_provider_spotfire.triggers.events.SpotfireTriggerEvent`. Its kwargs
    are JSON-safe and secret-free (the connection id, never a token). ``deadline`` (epoch seconds,
    from the task's ``execution_timeout``) ends the wait with a ``timeout`` event. ``on_kill``
    cancels the job only when ``cancel_on_kill`` is set (the operator's own job, not a job a
    sensor merely watches); ``cleanup`` never touches the remote job. ``result`` (JSON-safe, what
    the worker already knows) is handed back unchanged in the event's ``details["result"]``, so
    the task resumes with it even where the defer kwargs are not kept (``dag.test()``).
    """

    def __init__(
        self,
        job_id: str,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float | None = None,
        links: Mapping[str, str] | None = None,
        library_path: str | None = None,
        cancel_on_kill: bool = False,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.spotfire_conn_id = spotfire_conn_id
        self.poll_interval = validate.seconds("poll_interval", poll_interval)
        self.deadline = validate.epoch_deadline("deadline", deadline)
        self.links = {k: str(v) for k, v in (links or {}).items() if k in _LINK_NAMES and v}
        self.library_path = library_path
        self.cancel_on_kill = cancel_on_kill
        self.result = dict(result) if result is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "spotfire_conn_id": self.spotfire_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "links": dict(self.links),
                "library_path": self.library_path,
                "cancel_on_kill": self.cancel_on_kill,
                "result": self.result,
            },
        )

    def _hook(self) -> Any:
        from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook

        return SpotfireAsyncHook(self.spotfire_conn_id)

    @property
    def job(self) -> UploadJob:
        """The job reference (with the links the server gave) used for every request."""
        return UploadJob(job_id=self.job_id, links=self.links)

    def _event(self, status: Any, job_state: str | None, message: str, **details: Any) -> TriggerEvent:
        if self.library_path:
            details.setdefault("library_path", self.library_path)
        if self.result is not None:
            details["result"] = self.result
            details["links"] = dict(self.links)
        event = SpotfireTriggerEvent(status, self.job_id, job_state, message, details)
        return TriggerEvent(event.to_dict())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the job status; yield one event."""
        hook = self._hook()
        what = f"upload job {self.job_id}" + (f" ({self.library_path})" if self.library_path else "")
        while True:
            try:
                job = await hook.get_upload_status(self.job)
            except SpotfireNotFoundError as exc:
                yield self._event(
                    "failed",
                    "unknown",
                    f"Spotfire no longer knows {what}: it failed on the server or expired. "
                    f"{exc.description or exc}",
                )
                return
            except SpotfireError as exc:
                if not is_transient(exc):
                    yield self._event("error", None, f"Could not read the status of {what}: {exc}")
                    return
                self.log.warning("Status of %s unavailable (%s); polling again.", what, exc)
            else:
                if job.finished_at:
                    yield self._event(
                        "success", "finished", f"{what} finished at {job.finished_at}.", **job.to_dict()
                    )
                    return
                if job.cancelled_at:
                    yield self._event(
                        "failed",
                        "cancelled",
                        f"{what} was cancelled at {job.cancelled_at} before it finished; no item written.",
                        **job.to_dict(),
                    )
                    return
                self.log.info(
                    "%s is open (%d chunks on the server); waiting.", what, len(job.uploaded_chunks or ())
                )
            now = time.time()
            if self.deadline is not None and now >= self.deadline:
                owned = " The task cancels it." if self.cancel_on_kill else ""
                yield self._event(
                    "timeout",
                    "open",
                    f"{what} was not finished before the task's deadline.{owned}",
                )
                return
            wait = (
                self.poll_interval if self.deadline is None else min(self.poll_interval, self.deadline - now)
            )
            await asyncio.sleep(max(0.0, wait))

    async def on_kill(self) -> None:
        """The user failed or cleared the deferred task: cancel the job if this task owns it."""
        if not self.cancel_on_kill:
            return
        try:
            await asyncio.wait_for(self._hook().cancel_upload_job(self.job), ON_KILL_TIMEOUT)
        except SpotfireNotFoundError:
            self.log.info("Upload job %s is already gone; nothing to cancel.", self.job_id)
        except Exception as exc:
            self.log.warning("Could not cancel upload job %s on kill: %s", self.job_id, exc)
        else:
            self.log.warning("Cancelled upload job %s because the task was killed.", self.job_id)


__all__ = ["SpotfireUploadJobTrigger"]
