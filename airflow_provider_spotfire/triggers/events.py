"""The one shape of every event our triggers fire, and the one function that validates it.

A trigger fires ``TriggerEvent(event.to_dict())``; the operator or sensor resumes in
``execute_complete`` and calls :func:`validate_event`, which returns the payload on success and
raises a clear error for everything else (failure, timeout, a malformed or foreign event).

Every kind of wait (Automation Services job, library upload job, ...) speaks one vocabulary:

* ``status`` -- how the wait ended: ``success``, ``failed``, ``timeout`` or ``error``;
* ``job_state`` -- what the job's last known state means (:class:`JobState`): ``finished``,
  ``failed``, ``waiting`` (still queued or running), ``undetermined`` (a state it cannot finish
  from, e.g. NotSet), or ``None`` when the state could not be read;
* ``remote_state`` -- the server's own word for it (``Finished``, ``Canceled``, ``cancelled``,
  ``open``...), for messages and return values.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from airflow_provider_spotfire.exceptions import SpotfireError, SpotfireJobError, SpotfireTimeoutError

EventStatus = Literal["success", "failed", "timeout", "error"]
_STATUSES = ("success", "failed", "timeout", "error")


class JobState(enum.StrEnum):
    """What a job's state means for the waiting task, the same for every kind of job."""

    FINISHED = "finished"
    FAILED = "failed"
    WAITING = "waiting"
    UNDETERMINED = "undetermined"


# how an event from an older trigger (job_state in the server's words) is read: by its status
_STATE_OF_STATUS = {
    "success": JobState.FINISHED,
    "failed": JobState.FAILED,
    "timeout": JobState.WAITING,
    "error": None,
}


@dataclass(frozen=True)
class SpotfireTriggerEvent:
    """Payload of a trigger event: outcome, job id, job state (meaning and server's word), message, details."""

    status: EventStatus
    job_id: str
    job_state: JobState | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    remote_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["job_state"] = str(self.job_state) if self.job_state is not None else None
        return data


def _job_state(event: dict[str, Any]) -> tuple[JobState | None, str | None]:
    """(job_state, remote_state), forgiving events fired by earlier versions of the triggers."""
    raw = event.get("job_state")
    remote = event.get("remote_state")
    try:
        state = JobState(raw) if raw is not None else None
    except ValueError:  # an earlier trigger put the server's word ("Finished", "cancelled") here
        state, remote = _STATE_OF_STATUS[event["status"]], remote or str(raw)
    return state, str(remote) if remote is not None else None


def validate_event(event: Any, *, job_id: str | None = None) -> SpotfireTriggerEvent:
    """Return the event if it reports success for ``job_id``; raise the matching error otherwise."""
    if not isinstance(event, dict) or event.get("status") not in _STATUSES or not event.get("job_id"):
        raise SpotfireError(
            f"Received a malformed trigger event: {event!r}. This is a bug; please report it."
        )
    state, remote = _job_state(event)
    parsed = SpotfireTriggerEvent(
        status=event["status"],
        job_id=str(event["job_id"]),
        job_state=state,
        message=str(event.get("message") or ""),
        details=dict(event.get("details") or {}),
        remote_state=remote,
    )
    if job_id is not None and parsed.job_id != job_id:
        raise SpotfireError(f"Trigger event is for job {parsed.job_id}, expected {job_id}.")
    if parsed.status == "success":
        if parsed.job_state is not JobState.FINISHED:
            raise SpotfireError(
                f"Received a success event for job {parsed.job_id} in state {parsed.job_state}; "
                "only a finished job succeeds. This is a bug; please report it."
            )
        return parsed
    if parsed.status == "timeout":
        raise SpotfireTimeoutError(parsed.message, job_id=parsed.job_id, status=parsed.remote_state)
    raise SpotfireJobError(parsed.message, job_id=parsed.job_id, status=parsed.remote_state)


__all__ = ["EventStatus", "JobState", "SpotfireTriggerEvent", "validate_event"]
