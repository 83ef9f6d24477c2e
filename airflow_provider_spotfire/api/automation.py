"""Automation Services REST API v1: request builders, response models and the job-state vocabulary.

Four calls (``/spotfire/api/rest/as/job/...``), all with the scope
``api.rest.automation-services-job.execute``:

* ``POST start-library?path=..|id=..`` -- start a job stored in the library;
* ``POST start-content`` -- start a job from its XML definition (``application/xml`` body);
* ``GET status/{jobId}`` -- the job's ExecutionStatus;
* ``POST abort/{jobId}?reason=..`` -- abort it.

Every answer is an ExecutionStatus (``JobId``, ``StatusCode``, ``Message``), parsed forgivingly
by :func:`parse_execution_status`. What each StatusCode means for a waiting task is decided in
one place, :func:`outcome_of`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.exceptions import (
    SpotfireAutomationBusyError,
    SpotfireConfigurationError,
    SpotfireError,
    SpotfireJobError,
    SpotfireNotFoundError,
)

AS_JOB_PATH = "rest/as/job"

# StatusCode values (ExecutionStatus, Automation Services REST API v1 section 5.1)
NOT_SET = "NotSet"
QUEUED = "Queued"
IN_PROGRESS = "InProgress"
FINISHED = "Finished"
FAILED = "Failed"
MISSING = "Missing"
BUSY = "Busy"
CANCELED = "Canceled"
STATUS_CODES = (NOT_SET, QUEUED, IN_PROGRESS, FINISHED, FAILED, MISSING, BUSY, CANCELED)

# lower-cased, separator-free spelling -> canonical StatusCode ("in_progress", "CANCELLED", ...)
_CODE_ALIASES = {c.lower(): c for c in STATUS_CODES} | {"cancelled": CANCELED, "notset": NOT_SET}


class JobOutcome(enum.StrEnum):
    """What a StatusCode means for a task waiting on the job."""

    SUCCESS = "success"  # Finished
    FAILURE = "failure"  # Failed, Canceled, Missing: the job is over and did not succeed
    UNDETERMINED = "undetermined"  # NotSet or a code this provider does not know: fail, abort what may run
    WAIT = "wait"  # Queued, InProgress, Busy: keep polling


# The one table of what a StatusCode of a job means. (A *start* answered Busy is different: no
# job was created; check_started and the hook's start retry handle that, see ExecutionStatus.is_busy.)
_OUTCOMES: dict[str, JobOutcome] = {
    FINISHED: JobOutcome.SUCCESS,
    FAILED: JobOutcome.FAILURE,
    CANCELED: JobOutcome.FAILURE,
    MISSING: JobOutcome.FAILURE,
    QUEUED: JobOutcome.WAIT,
    IN_PROGRESS: JobOutcome.WAIT,
    BUSY: JobOutcome.WAIT,
}


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def normalize_status_code(value: Any) -> str:
    """Canonical StatusCode in any casing/spelling (``in_progress`` -> ``InProgress``); unknown kept."""
    if value is None:
        return NOT_SET
    text = str(value).strip()
    return _CODE_ALIASES.get(_squash(text), text or NOT_SET)


def outcome_of(status_code: str) -> JobOutcome:
    """What a job's StatusCode means for the operator, sensor and trigger (NotSet, unknown: undetermined)."""
    return _OUTCOMES.get(normalize_status_code(status_code), JobOutcome.UNDETERMINED)


@dataclass(frozen=True)
class ExecutionStatus:
    """An Automation Services ExecutionStatus: job id, canonical StatusCode and the server's message."""

    job_id: str | None
    status_code: str
    message: str = ""

    @property
    def outcome(self) -> JobOutcome:
        return outcome_of(self.status_code)

    @property
    def is_active(self) -> bool:
        """The job may still run (outcome WAIT): it can be waited for or aborted."""
        return self.outcome is JobOutcome.WAIT

    @property
    def is_busy(self) -> bool:
        """Busy: in the answer to a *start*, the server created no job and the start may be repeated."""
        return self.status_code == BUSY

    def describe(self) -> str:
        """``Failed: Could not open analysis ...`` (the message only when the server gave one)."""
        return f"{self.status_code}: {self.message}" if self.message else self.status_code

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, in the server's own field names (the operator's return value)."""
        return {"JobId": self.job_id, "StatusCode": self.status_code, "Message": self.message}


def status_from_event(job_id: str, job_state: str | None, details: Mapping[str, Any]) -> ExecutionStatus:
    """The final ExecutionStatus a trigger event carries (``details["status"]``), else its own fields."""
    carried = details.get("status")
    if isinstance(carried, Mapping) and carried:
        return _with_job_id(parse_execution_status(dict(carried), where="the trigger event"), job_id)
    return ExecutionStatus(job_id, normalize_status_code(job_state))


_JOB_ID_KEYS = ("jobid", "id", "job")
_CODE_KEYS = ("statuscode", "status", "code", "state")
_MESSAGE_KEYS = ("message", "msg", "statusmessage", "description")


def parse_execution_status(body: Any, *, where: str = "Spotfire") -> ExecutionStatus:
    """ExecutionStatus from a decoded JSON body: any key casing, unknown keys ignored.

    Accepts ``{"JobId", "StatusCode", "Message"}``, ``{"jobId", "statusCode", "message"}``,
    ``job_id``/``status_code``, a body wrapped in one object (``{"executionStatus": {...}}``),
    and status codes in any casing (``FINISHED``, ``in_progress``, ``Cancelled``).
    """
    if isinstance(body, dict) and len(body) == 1:
        (only,) = body.values()
        if isinstance(only, dict):
            body = only
    if not isinstance(body, dict):
        raise SpotfireError(
            f"{where} answered with {type(body).__name__} where an ExecutionStatus object "
            "(JobId, StatusCode, Message) was expected; is the connection pointing at Spotfire Server?"
        )
    fields = {_squash(str(k)): v for k, v in body.items()}

    def first(keys: tuple[str, ...]) -> Any:
        for key in keys:
            value = fields.get(key)
            if value is not None and value != "":
                return value
        return None

    raw_code = first(_CODE_KEYS)
    if raw_code is None:
        raise SpotfireError(
            f"{where} answered without a StatusCode (keys: {', '.join(sorted(map(str, body)))}); "
            "expected an ExecutionStatus (JobId, StatusCode, Message)."
        )
    job_id = first(_JOB_ID_KEYS)
    message = first(_MESSAGE_KEYS)
    return ExecutionStatus(
        job_id=str(job_id) if job_id is not None else None,
        status_code=normalize_status_code(raw_code),
        message=str(message).strip() if message is not None else "",
    )


def _parse_status(response: HttpResponse, where: str) -> ExecutionStatus:
    try:
        body = response.json()
    except ValueError:
        raise SpotfireError(
            f"{where} answered with a body that is not JSON ({response.text[:200]!r}); expected an "
            "ExecutionStatus. Check that the connection points at Spotfire Server."
        ) from None
    return parse_execution_status(body, where=where)


class JobWatch:
    """Follows one job's StatusCode across polls: logs a line per state change, not per poll.

    ``history`` keeps ``[StatusCode, ISO-8601 UTC time first seen]`` pairs (JSON-safe, for events).
    """

    def __init__(self, job_id: str, *, last_status: str | None = None, logger: Any = None) -> None:
        self.job_id = job_id
        self.last_status = last_status
        self.history: list[list[str]] = []
        self.log = logger

    def observe(self, status: ExecutionStatus) -> bool:
        """Record ``status``; True (and one log line) when it differs from the previous one."""
        if status.status_code == self.last_status:
            return False
        when = datetime.now(UTC).isoformat(timespec="seconds")
        if self.log is not None:
            detail = f" ({status.message})" if status.message else ""
            if self.last_status is None:
                self.log.info(
                    "Automation Services job %s is %s at %s%s", self.job_id, status.status_code, when, detail
                )
            else:
                self.log.info(
                    "Automation Services job %s: %s -> %s at %s%s",
                    self.job_id,
                    self.last_status,
                    status.status_code,
                    when,
                    detail,
                )
        self.history.append([status.status_code, when])
        self.last_status = status.status_code
        return True


def failure_message(status: ExecutionStatus) -> str:
    """The task's error for a job that did not finish: the StatusCode and the server's Message."""
    if status.outcome is JobOutcome.UNDETERMINED:
        return (
            f"Automation Services job {status.job_id} reports {status.describe()}, which is not a state "
            "the job can finish from; treating it as failed (check the job on the Spotfire server)."
        )
    return f"Automation Services job {status.job_id} ended {status.describe()}"


# ------------------------------------------------------------------------------------------ job sources


@dataclass(frozen=True)
class AutomationJobSource:
    """Where a job's definition comes from: exactly one of a library path, a library id or job XML.

    ``xml_path`` is the optional ``path`` query parameter of start-content (the library path the
    XML job is known by); only meaningful with ``job_xml``.
    """

    library_path: str | None = None
    library_id: str | None = None
    job_xml: str | None = None
    xml_path: str | None = None

    def __post_init__(self) -> None:
        given = [n for n in ("library_path", "library_id", "job_xml") if getattr(self, n) not in (None, "")]
        if len(given) != 1:
            which = ", ".join(given) if given else "none"
            raise SpotfireConfigurationError(
                "Give exactly one of library_path (e.g. '/Jobs/Export report'), library_id (the job "
                f"file's GUID) or job_xml (the job definition, or a .xml file beside the DAG); got {which}."
            )
        if self.xml_path and not self.job_xml:
            raise SpotfireConfigurationError("xml_path is only used with job_xml; remove it or pass job_xml.")
        if self.job_xml is not None and not self.job_xml.lstrip().startswith("<"):
            name = self.job_xml.strip()
            hint = (
                f"{name!r} looks like a file name: put the file beside the DAG file (or in the DAG's "
                "template_searchpath) so Airflow can load it"
                if name.lower().endswith(".xml")
                else f"it starts with {name[:40]!r}"
            )
            raise SpotfireConfigurationError(
                f"job_xml must be an Automation Services job definition (XML starting with '<'); {hint}."
            )
        validate.job_source(self.library_path, self.library_id, self.job_xml)

    @property
    def kind(self) -> str:
        """``library-path``, ``library-id`` or ``xml``."""
        if self.library_path:
            return "library-path"
        if self.library_id:
            return "library-id"
        return "xml"

    def describe(self) -> str:
        """For messages: ``library job '/Jobs/Export'``, ``library job id ...``, ``job XML (1.2 kB)``."""
        if self.library_path:
            return f"library job {self.library_path!r}"
        if self.library_id:
            return f"library job id {self.library_id}"
        size = len((self.job_xml or "").encode())
        return f"job XML ({size} bytes" + (f", path {self.xml_path!r})" if self.xml_path else ")")

    def start_request(self) -> ApiRequest[ExecutionStatus]:
        """The start-library or start-content request for this source."""
        if self.job_xml is not None:
            return build_start_xml_job(self.job_xml, path=self.xml_path)
        return build_start_library_job(library_path=self.library_path, library_id=self.library_id)


# ------------------------------------------------------------------------------------------ requests


def _start_parser(source: str) -> Any:
    def parse(response: HttpResponse) -> ExecutionStatus:
        status = _parse_status(response, "Spotfire Automation Services (start)")
        return check_started(status, source)

    return parse


def check_started(status: ExecutionStatus, source: str) -> ExecutionStatus:
    """Accept a start answer that created a job (or said Busy); raise the server's reason otherwise.

    Spotfire answers a refused start with HTTP 200 and e.g. ``StatusCode: Failed, Message: Job file
    not found or no access.`` -- that is a failure, reported with the server's message.
    """
    if status.is_busy:
        return status
    if status.outcome in (JobOutcome.FAILURE, JobOutcome.UNDETERMINED):
        raise SpotfireJobError(
            f"Spotfire did not start the Automation Services {source}: {status.describe()}",
            job_id=status.job_id,
            status=status.status_code,
        )
    if not status.job_id:
        raise SpotfireJobError(
            f"Spotfire accepted the Automation Services {source} ({status.describe()}) but returned no "
            "JobId, so the job cannot be watched or aborted.",
            status=status.status_code,
        )
    return status


def build_start_library_job(
    *, library_path: str | None = None, library_id: str | None = None
) -> ApiRequest[ExecutionStatus]:
    """``POST rest/as/job/start-library`` with ``path`` or ``id`` (not idempotent: each call starts a job)."""
    if bool(library_path) == bool(library_id):
        raise SpotfireConfigurationError(
            "Start a library job with exactly one of library_path or library_id."
        )
    validate.job_source(library_path, library_id, None)
    params = {"path": library_path} if library_path else {"id": library_id}
    source = f"library job {library_path!r}" if library_path else f"library job id {library_id}"
    return ApiRequest(
        "POST",
        f"{AS_JOB_PATH}/start-library",
        (S.AUTOMATION_EXECUTE,),
        parse=_start_parser(source),
        params=params,
        headers={"Content-Type": "application/json"},
        content=b"",
        idempotent=False,
    )


def build_start_xml_job(job_xml: str | bytes, *, path: str | None = None) -> ApiRequest[ExecutionStatus]:
    """``POST rest/as/job/start-content`` with the job definition as an ``application/xml`` body."""
    body = job_xml.encode("utf-8") if isinstance(job_xml, str) else job_xml
    if not body.strip():
        raise SpotfireConfigurationError("job_xml is empty; pass the Automation Services job definition.")
    validate.job_xml(body, well_formed=False)  # DTDs refused here; the server judges the rest
    return ApiRequest(
        "POST",
        f"{AS_JOB_PATH}/start-content",
        (S.AUTOMATION_EXECUTE,),
        parse=_start_parser(f"job XML ({len(body)} bytes)"),
        params={"path": path} if path else None,
        headers={"Content-Type": "application/xml; charset=utf-8"},
        content=body,
        idempotent=False,
    )


def _job_segment(job_id: str) -> str:
    if not job_id or not str(job_id).strip():
        raise SpotfireConfigurationError("An Automation Services job id is required (got an empty one).")
    return quote(str(job_id).strip(), safe="")


def build_get_job_status(job_id: str) -> ApiRequest[ExecutionStatus]:
    """``GET rest/as/job/status/{jobId}`` (idempotent). A 404 raises SpotfireNotFoundError."""
    return ApiRequest(
        "GET",
        f"{AS_JOB_PATH}/status/{_job_segment(job_id)}",
        (S.AUTOMATION_EXECUTE,),
        parse=lambda r: _with_job_id(_parse_status(r, "Spotfire Automation Services (status)"), job_id),
        idempotent=True,
    )


def _parse_abort(response: HttpResponse, job_id: str) -> ExecutionStatus | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if body is None:
        return None
    try:
        return _with_job_id(
            parse_execution_status(body, where="Spotfire Automation Services (abort)"), job_id
        )
    except SpotfireError:
        return None  # "200 Job Aborted" has no documented schema: anything else is fine too


def build_abort_job(job_id: str, reason: str | None = None) -> ApiRequest[ExecutionStatus | None]:
    """``POST rest/as/job/abort/{jobId}?reason=..`` (idempotent: aborting twice is harmless)."""
    return ApiRequest(
        "POST",
        f"{AS_JOB_PATH}/abort/{_job_segment(job_id)}",
        (S.AUTOMATION_EXECUTE,),
        parse=lambda r: _parse_abort(r, job_id),
        params={"reason": reason[:1000]} if reason else None,
        headers={"Content-Type": "application/json"},
        content=b"",
        idempotent=True,
    )


def _with_job_id(status: ExecutionStatus, job_id: str) -> ExecutionStatus:
    return status if status.job_id else ExecutionStatus(job_id, status.status_code, status.message)


def missing_status(job_id: str, error: SpotfireNotFoundError) -> ExecutionStatus:
    """The status of a job the server answers 404 for: Missing, with the server's description."""
    detail = error.description or "the server does not know this job id (404)"
    return ExecutionStatus(job_id, MISSING, f"Job not found: {detail}")


# ------------------------------------------------------------------------------------------ Busy


@dataclass(frozen=True)
class BusyRetry:
    """How long to keep re-starting a job that the server answers ``Busy`` to.

    Capped exponential backoff with jitter, at most ``max_attempts`` starts and ``max_wait``
    seconds of waiting in total; then :class:`SpotfireAutomationBusyError`.
    """

    max_attempts: int = 8
    initial_delay: float = 5.0
    max_delay: float = 60.0
    max_wait: float = 600.0

    def __post_init__(self) -> None:
        validate.backoff_fields(self, "max_attempts", "initial_delay", "max_delay", "max_wait")

    def delays(self) -> Iterator[float]:
        """Seconds to wait before starts 2, 3, ... (bounded by max_attempts and max_wait)."""
        waited = 0.0
        for attempt in range(1, self.max_attempts):
            cap = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
            delay = min(random.uniform(cap / 2, cap), self.max_wait - waited)
            if delay <= 0:
                return
            waited += delay
            yield delay

    def exhausted(
        self, source: AutomationJobSource, attempts: int, last: ExecutionStatus, waited: float
    ) -> SpotfireAutomationBusyError:
        """The error after ``attempts`` starts answered Busy, ``waited`` seconds of backoff in all."""
        return SpotfireAutomationBusyError(
            f"Spotfire Automation Services answered Busy to {attempts} starts of the {source.describe()} "
            f"over {waited:.0f}s ({last.message or 'no message'}). Too many jobs are "
            "running: retry later, lower the DAG's concurrency, or raise the bound with "
            "busy_retry=BusyRetry(max_attempts=..., max_wait=...).",
            job_id=last.job_id,
            status=BUSY,
        )


__all__ = [
    "STATUS_CODES",
    "AutomationJobSource",
    "BusyRetry",
    "ExecutionStatus",
    "JobOutcome",
    "JobWatch",
    "SpotfireAutomationBusyError",
    "build_abort_job",
    "build_get_job_status",
    "build_start_library_job",
    "build_start_xml_job",
    "check_started",
    "failure_message",
    "missing_status",
    "normalize_status_code",
    "outcome_of",
    "parse_execution_status",
    "status_from_event",
]
