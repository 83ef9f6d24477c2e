"""Trigger that waits for an Automation Services job in the triggerer (polls only; never starts a job)."""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire.api.automation import ExecutionStatus, JobOutcome, JobWatch, failure_message
from airflow_provider_spotfire.exceptions import SpotfireApiError, SpotfireError
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook
from airflow_provider_spotfire.triggers.events import SpotfireTriggerEvent

# on_kill runs within the triggerer's own bound ([triggerer] on_kill_timeout, 30 s by default):
# give the abort call a few quick attempts rather than the default 15-minute retry budget.
ABORT_RETRY_POLICY = RetryPolicy(max_attempts=3, initial_backoff=0.5, max_backoff=2.0, max_total_wait=10.0)
ABORT_TIMEOUT = 20.0
# Triggers of one event loop share one hook per connection (one connection lookup, one token);
# the connection is read again after this many seconds so that edits reach running triggers.
HOOK_TTL = 300.0
# Status requests in flight at once per event loop. Kept within the shared HTTP client's keep-alive
# pool: more would queue inside the pool (whose bookkeeping grows with the queue) and churn
# connections; fewer starves slow servers. 1,000 jobs polled every 15 s need ~70 requests/s.
MAX_CONCURRENT_POLLS = 20


class _LoopShared:
    """What the triggers of one event loop share: hooks by connection id and the poll limit."""

    def __init__(self) -> None:
        self.hooks: dict[str, tuple[float, SpotfireAsyncHook]] = {}
        self.lock = asyncio.Lock()
        self.polls = asyncio.Semaphore(MAX_CONCURRENT_POLLS)

    async def hook(self, spotfire_conn_id: str) -> SpotfireAsyncHook:
        entry = self.hooks.get(spotfire_conn_id)
        if entry is None or time.monotonic() - entry[0] > HOOK_TTL:
            async with self.lock:  # 1,000 triggers starting together make one connection lookup
                entry = self.hooks.get(spotfire_conn_id)
                if entry is None or time.monotonic() - entry[0] > HOOK_TTL:
                    hook = SpotfireAsyncHook(spotfire_conn_id)
                    await hook.aconfig()
                    entry = self.hooks[spotfire_conn_id] = (time.monotonic(), hook)
        return entry[1]


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShared] = weakref.WeakKeyDictionary()


def _loop_shared() -> _LoopShared:
    loop = asyncio.get_running_loop()
    shared = _SHARED.get(loop)
    if shared is None:
        shared = _SHARED[loop] = _LoopShared()
    return shared


async def shared_async_hook(spotfire_conn_id: str) -> SpotfireAsyncHook:
    """The hook every trigger of the running loop uses for ``spotfire_conn_id`` (connection read once)."""
    return await _loop_shared().hook(spotfire_conn_id)


async def poll_job_status(spotfire_conn_id: str, job_id: str) -> ExecutionStatus:
    """One status read through the loop's shared hook, within the loop's limit of polls in flight."""
    shared = _loop_shared()
    hook = await shared.hook(spotfire_conn_id)
    async with shared.polls:
        return await hook.get_automation_job_status(job_id, missing_ok=True)


class SpotfireAutomationJobTrigger(BaseTrigger):
    """Polls an Automation Services job until it finishes, fails or passes its deadline.

    Fires exactly one event (see :func:`~airflow_provider_spotfire.triggers.events.validate_event`):
    ``success`` (Finished), ``failed`` (Failed, Canceled, Missing, NotSet or an unknown code, with the
    server's Message), ``timeout`` (``deadline`` passed: checked once more, then the job is aborted
    when ``abort_unfinished``) or ``error`` (the status could not be read).

    Kill semantics: :meth:`on_kill` (Airflow 3.3+: a user marked the task failed or cleared it)
    aborts the job when ``abort_on_kill``; :meth:`cleanup` (every exit, including a triggerer
    restart) never touches the job.

    :param job_id: the Automation Services job id.
    :param spotfire_conn_id: the ``spotfire`` connection (the only credential reference kept).
    :param poll_interval: seconds between status requests.
    :param deadline: epoch seconds after which the wait ends (the task's execution_timeout).
    :param abort_unfinished: abort the job when the wait ends without an outcome (deadline, NotSet).
    :param abort_on_kill: abort the job when a user kills the deferred task.
    :param task_label: ``dag.task (run ..., try n)``, used in abort reasons.
    :param last_status: the StatusCode already logged by the task (only changes are logged).
    """

    def __init__(
        self,
        job_id: str,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 15.0,
        deadline: float | None = None,
        abort_unfinished: bool = True,
        abort_on_kill: bool = True,
        task_label: str | None = None,
        last_status: str | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.spotfire_conn_id = spotfire_conn_id
        self.poll_interval = validate.seconds("poll_interval", poll_interval)
        self.deadline = validate.epoch_deadline("deadline", deadline)
        self.abort_unfinished = abort_unfinished
        self.abort_on_kill = abort_on_kill
        self.task_label = task_label
        self.last_status = last_status

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs: ids, numbers and flags, never a secret."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "spotfire_conn_id": self.spotfire_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "abort_unfinished": self.abort_unfinished,
                "abort_on_kill": self.abort_on_kill,
                "task_label": self.task_label,
                "last_status": self.last_status,
            },
        )

    def _event(self, kind: str, job_state: str | None, message: str, **details: Any) -> TriggerEvent:
        event = SpotfireTriggerEvent(kind, self.job_id, job_state, message, details)  # type: ignore[arg-type]
        return TriggerEvent(event.to_dict())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the job's status every ``poll_interval`` seconds and yield one event.

        The first poll comes at a random point of the first interval (the task has just read the
        status): many triggers started together -- e.g. by a triggerer restart -- spread their
        polls evenly instead of hitting the server, and the shared connection pool, all at once.
        """
        watch = JobWatch(self.job_id, last_status=self.last_status, logger=self.log)
        await asyncio.sleep(self._until_next_poll(random.uniform(0, self.poll_interval)))
        while True:
            try:
                status = await poll_job_status(self.spotfire_conn_id, self.job_id)
            except Exception as exc:  # every failure becomes an event the task can act on
                details: dict[str, Any] = {"history": watch.history}
                if isinstance(exc, SpotfireApiError):
                    details["error"] = exc.to_dict()
                reason = str(exc) if isinstance(exc, SpotfireError) else f"{type(exc).__name__}: {exc}"
                yield self._event(
                    "error",
                    watch.last_status,
                    f"Could not read the status of Automation Services job {self.job_id}: {reason}",
                    **details,
                )
                return
            watch.observe(status)
            outcome = status.outcome
            if outcome is JobOutcome.SUCCESS:
                yield self._event(
                    "success",
                    status.status_code,
                    status.message,
                    status=status.to_dict(),
                    history=watch.history,
                )
                return
            if outcome in (JobOutcome.FAILURE, JobOutcome.UNDETERMINED):
                if outcome is JobOutcome.UNDETERMINED and self.abort_unfinished:
                    await self._abort(f"{self._label()} gave up on it: status {status.status_code}")
                yield self._event(
                    "failed",
                    status.status_code,
                    failure_message(status),
                    status=status.to_dict(),
                    history=watch.history,
                )
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield await self._timeout_event(status, watch)
                return
            await asyncio.sleep(self._until_next_poll(self.poll_interval))

    def _until_next_poll(self, delay: float) -> float:
        """``delay``, cut short so that a poll happens right at the deadline."""
        if self.deadline is not None:
            delay = min(delay, self.deadline - time.time())
        return max(delay, 0.0)

    async def _timeout_event(self, status: ExecutionStatus, watch: JobWatch) -> TriggerEvent:
        when = datetime.fromtimestamp(self.deadline or 0, UTC).isoformat(timespec="seconds")
        message = (
            f"Automation Services job {self.job_id} was still {status.status_code} at the wait's "
            f"deadline {when}"
        )
        aborted = False
        if self.abort_unfinished:
            aborted = await self._abort(f"{self._label()} exceeded its execution_timeout")
            message += "; the job was aborted." if aborted else "; aborting the job failed (see the log)."
        return self._event(
            "timeout",
            status.status_code,
            message,
            status=status.to_dict(),
            history=watch.history,
            aborted=aborted,
        )

    def _label(self) -> str:
        return f"Airflow task {self.task_label}" if self.task_label else "Airflow"

    async def _abort(self, reason: str) -> bool:
        """Abort the job (bounded in time); True when the server accepted or no longer knows it."""
        hook = SpotfireAsyncHook(self.spotfire_conn_id, retry_policy=ABORT_RETRY_POLICY)
        try:
            await asyncio.wait_for(hook.abort_automation_job(self.job_id, reason), timeout=ABORT_TIMEOUT)
        except Exception as exc:
            self.log.warning("Could not abort Automation Services job %s: %s", self.job_id, exc)
            return False
        self.log.info("Aborted Automation Services job %s (reason: %s).", self.job_id, reason)
        return True

    async def on_kill(self) -> None:
        """A user marked the deferred task failed or cleared it: abort the job (when ``abort_on_kill``)."""
        if self.abort_on_kill:
            await self._abort(f"{self._label()} was marked failed or cleared by a user")

    async def cleanup(self) -> None:
        """Runs on every exit, including a triggerer restart: the remote job is deliberately left running."""
        await super().cleanup()


__all__ = ["SpotfireAutomationJobTrigger"]
