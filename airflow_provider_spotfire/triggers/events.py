"""The one shape of every event our triggers fire, and the one function that validates it.

A trigger fires ``TriggerEvent(event.to_dict())``; the operator or sensor resumes in
``execute_complete`` and calls :func:`validate_event`, which returns the payload on success and
raises a clear error for everything else (failure, timeout, a malformed or foreign event).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from airflow_provider_spotfire.exceptions import SpotfireError, SpotfireJobError, SpotfireTimeoutError

EventStatus = Literal["success", "failed", "timeout", "error"]
_STATUSES = ("success", "failed", "timeout", "error")


@dataclass(frozen=True)
class SpotfireTriggerEvent:
    """Payload of a trigger event: outcome, job id, final remote state, message and JSON-safe details."""

    status: EventStatus
    job_id: str
    job_state: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_event(event: Any, *, job_id: str | None = None) -> SpotfireTriggerEvent:
    """Return the event if it reports success for ``job_id``; raise the matching error otherwise."""
    if not isinstance(event, dict) or event.get("status") not in _STATUSES or not event.get("job_id"):
        raise SpotfireError(
            f"Received a malformed trigger event: {event!r}. This is a bug; please report it."
        )
    parsed = SpotfireTriggerEvent(
        status=event["status"],
        job_id=str(event["job_id"]),
        job_state=event.get("job_state"),
        message=str(event.get("message") or ""),
        details=dict(event.get("details") or {}),
    )
    if job_id is not None and parsed.job_id != job_id:
        raise SpotfireError(f"Trigger event is for job {parsed.job_id}, expected {job_id}.")
    if parsed.status == "success":
        return parsed
    if parsed.status == "timeout":
        raise SpotfireTimeoutError(parsed.message, job_id=parsed.job_id, status=parsed.job_state)
    raise SpotfireJobError(parsed.message, job_id=parsed.job_id, status=parsed.job_state)
