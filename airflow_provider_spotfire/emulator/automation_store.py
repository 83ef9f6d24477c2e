"""Automation Services state of the emulator: jobs whose status is computed lazily from the clock.

A job goes Queued → InProgress → Finished/Failed/NotSet at timestamps fixed when it starts; nothing runs in
the background. Timing and outcome come from the configuration or from an emulator processing instruction
in the job XML, e.g. ``<?spotfire-emulator queue="0" duration="5" outcome="Failed" message="Disk full"?>``.
"""

from __future__ import annotations

import heapq
import random
import re
import threading
import xml.parsers.expat
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_spotfire.emulator.constants import (
    CANCELED,
    DEFAULT_MESSAGES,
    IN_PROGRESS,
    MISSING,
    OUTCOMES,
    PI_TARGET,
    QUEUED,
)
from airflow_provider_spotfire.emulator.core import PollLog, iso

_ATTR_RE = re.compile(r"""([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def parse_behaviour(data: str) -> dict[str, Any]:
    """Parse the attributes of a ``<?spotfire-emulator ...?>`` processing instruction (raises ValueError)."""
    behaviour: dict[str, Any] = {}
    rest = _ATTR_RE.sub("", data).strip()
    if rest:
        raise ValueError(f"malformed <?{PI_TARGET}?> processing instruction: {data!r}")
    for name, v1, v2 in _ATTR_RE.findall(data):
        value = v1 if v1 or not v2 else v2
        if name in ("duration", "queue"):
            try:
                num = float(value)
            except ValueError as exc:
                raise ValueError(f"<?{PI_TARGET}?> {name} must be a number of seconds") from exc
            if num < 0 or num != num:
                raise ValueError(f"<?{PI_TARGET}?> {name} must not be negative")
            behaviour[name] = num
        elif name == "outcome":
            if value.lower() not in OUTCOMES:
                raise ValueError(f"<?{PI_TARGET}?> outcome must be one of Finished, Failed, NotSet")
            behaviour["outcome"] = OUTCOMES[value.lower()]
        elif name == "message":
            behaviour["message"] = value
        else:
            raise ValueError(f"unknown <?{PI_TARGET}?> attribute {name!r}")
    return behaviour


def parse_job_xml(content: bytes) -> dict[str, Any]:
    """Check that ``content`` is well-formed XML; return the emulator behaviour found in it (ValueError)."""
    found: dict[str, Any] = {}
    errors: list[str] = []

    def on_pi(target: str, data: str) -> None:
        if target == PI_TARGET:
            try:
                found.update(parse_behaviour(data))
            except ValueError as exc:
                errors.append(str(exc))

    parser = xml.parsers.expat.ParserCreate()
    parser.ProcessingInstructionHandler = on_pi
    try:
        parser.Parse(content, True)
    except xml.parsers.expat.ExpatError as exc:
        raise ValueError(f"the job definition is not well-formed XML: {exc}") from exc
    if errors:
        raise ValueError(errors[0])
    return found


@dataclass
class AsJob:
    """An Automation Services job; its status is computed lazily from timestamps."""

    job_id: str
    client_id: str
    source_kind: str  # library-path | library-id | xml
    source: str
    created_at: float
    queue_seconds: float
    run_seconds: float
    outcome: str
    outcome_message: str | None
    starts: int
    item_id: str | None = None
    path_param: str | None = None
    immediate: tuple[str, str] | None = None  # (status, message) of jobs that fail at start
    aborted_at: float | None = None
    abort_reason: str | None = None
    forgotten_at: float | None = None
    polls: PollLog = field(default_factory=PollLog)  # GET status requests
    abort_requests: int = 0  # POST abort requests

    @property
    def status_polls(self) -> int:
        """Number of GET status requests."""
        return self.polls.count

    @property
    def planned_end(self) -> float:
        """When the job reaches its outcome unless aborted or forgotten first."""
        return self.created_at + self.queue_seconds + self.run_seconds

    def started_at(self, now: float) -> float | None:
        """When the job went InProgress (``None`` while queued, or if it never ran)."""
        for status, ts in self.history(now):
            if status == IN_PROGRESS:
                return ts
        return None

    def finished_at(self, now: float) -> float | None:
        """When the job reached a final status (``None`` while queued or in progress)."""
        hist = self.history(now)
        if hist and hist[-1][0] not in (QUEUED, IN_PROGRESS):
            return hist[-1][1]
        return None

    def summary(self, now: float) -> dict[str, Any]:
        """One row of ``GET /_emulator/automation/jobs``."""
        return {
            "id": self.job_id,
            "state": self.status(now)[0],
            "client_id": self.client_id,
            "status_polls": self.status_polls,
            "abort_requests": self.abort_requests,
            "queue_seconds": self.queue_seconds,
            "run_seconds": self.run_seconds,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at(now)),
            "finished_at": iso(self.finished_at(now)),
        }

    def history(self, now: float) -> list[tuple[str, float]]:
        """Status transitions (status, timestamp) that have happened up to ``now``."""
        if self.immediate is not None:
            hist = [(self.immediate[0], self.created_at)]
        else:
            planned = [
                (QUEUED, self.created_at),
                (IN_PROGRESS, self.created_at + self.queue_seconds),
                (self.outcome, self.created_at + self.queue_seconds + self.run_seconds),
            ]
            hist = []
            for status, ts in planned:
                if ts > now or (self.aborted_at is not None and ts > self.aborted_at):
                    break
                hist.append((status, ts))
            if self.aborted_at is not None and self.aborted_at <= now:
                hist.append((CANCELED, self.aborted_at))
        if self.forgotten_at is not None and self.forgotten_at <= now:
            hist.append((MISSING, self.forgotten_at))
        return hist

    def status(self, now: float) -> tuple[str, str]:
        """(StatusCode, Message) at ``now``."""
        hist = self.history(now)
        code = hist[-1][0] if hist else QUEUED
        if code == MISSING:
            return MISSING, DEFAULT_MESSAGES[MISSING]
        if self.immediate is not None:
            return self.immediate
        if code == CANCELED:
            msg = DEFAULT_MESSAGES[CANCELED]
            if self.abort_reason:
                msg = f"{msg} Reason: {self.abort_reason}"
            return CANCELED, msg
        if len(hist) >= 3 and self.outcome_message is not None:
            return code, self.outcome_message
        return code, DEFAULT_MESSAGES[code]

    def running(self, now: float) -> bool:
        """Queued or InProgress (counts against ``as_max_concurrent_jobs``)."""
        return self.status(now)[0] in (QUEUED, IN_PROGRESS)

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON view used by the inspection endpoints."""
        code, msg = self.status(now)
        return {
            "jobId": self.job_id,
            "clientId": self.client_id,
            "status": code,
            "message": msg,
            "source": {"kind": self.source_kind, "value": self.source, "path": self.path_param},
            "itemId": self.item_id,
            "starts": self.starts,
            "queueSeconds": self.queue_seconds,
            "runSeconds": self.run_seconds,
            "outcome": self.outcome,
            "history": [{"status": s, "at": iso(t)} for s, t in self.history(now)],
            "createdAt": iso(self.created_at),
            "abortedAt": iso(self.aborted_at),
            "abortReason": self.abort_reason,
            "forgottenAt": iso(self.forgotten_at),
            "startedAt": iso(self.started_at(now)),
            "finishedAt": iso(self.finished_at(now)),
            "status_polls": self.status_polls,
            "status_poll_times": self.polls.times_iso(),
            "abort_requests": self.abort_requests,
        }


class RunningJobs:
    """Ids of Queued/InProgress AS jobs keyed to their planned end, pruned lazily from a heap.

    Counting is amortised O(log n) per job over its life instead of a scan of all jobs per start; it
    relies on the emulator clock never going backwards (``advance_clock`` only moves it forward).
    """

    def __init__(self) -> None:
        self._ends: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def add(self, job_id: str, end: float) -> None:
        """Track a job that runs until ``end``."""
        self._ends[job_id] = end
        heapq.heappush(self._heap, (end, job_id))

    def discard(self, job_id: str) -> None:
        """Stop tracking a job (aborted or forgotten before its end)."""
        self._ends.pop(job_id, None)

    def count(self, now: float) -> int:
        """Jobs still running at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            end, job_id = heapq.heappop(heap)
            if self._ends.get(job_id) == end:
                del self._ends[job_id]
        return len(self._ends)


class AutomationStore:
    """All AS jobs by id, the index of running jobs and the RNG of per-job durations."""

    def __init__(self, lock: threading.RLock, duration_seed: int | None) -> None:
        self._lock = lock
        self.jobs: dict[str, AsJob] = {}
        self.running = RunningJobs()
        self.rng = random.Random(duration_seed)

    def get(self, job_id: str) -> AsJob | None:
        """Job by id (case-insensitive GUID match)."""
        with self._lock:
            return self.jobs.get(job_id) or self.jobs.get(job_id.lower())

    def add(self, job: AsJob) -> None:
        """Store a new job (and track it as running unless it failed at start)."""
        with self._lock:
            self.jobs[job.job_id] = job
            if job.immediate is None:
                self.running.add(job.job_id, job.planned_end)

    def running_count(self, now: float) -> int:
        """Queued + InProgress jobs at ``now``."""
        with self._lock:
            return self.running.count(now)

    def abort(self, job: AsJob, now: float, reason: str | None) -> None:
        """Cancel a running job (a job that is no longer running stays as it is)."""
        with self._lock:
            if job.running(now) and job.aborted_at is None:
                job.aborted_at = now
                job.abort_reason = reason
                self.running.discard(job.job_id)

    def forget(self, job: AsJob, now: float) -> None:
        """Make a job answer Missing from now on."""
        with self._lock:
            if job.forgotten_at is None:
                job.forgotten_at = now
                self.running.discard(job.job_id)

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """All jobs for ``GET /_emulator/state``."""
        with self._lock:
            return [j.to_dict(now) for j in self.jobs.values()]
