"""The one polling trigger every Spotfire wait is built on (Automation Services jobs, upload jobs...).

What every wait shares lives here, once:

* one hook (connection read once, one token) and one HTTP session per event loop and connection;
* at most :data:`MAX_CONCURRENT_POLLS` status requests in flight per loop;
* the first poll at a random point of the first interval, so that 1,000 triggers started together
  (a triggerer restart) spread their polls instead of arriving at once;
* the same bounded policy for transient errors (:data:`POLL_RETRY_POLICY`: retried for ~10 minutes,
  then the wait ends with an ``error`` event);
* a :class:`~.schedule.PollSchedule` (fixed or growing with the job's age), the deadline (the task's
  ``execution_timeout``) with one last check at it, one event vocabulary (:mod:`.events`);
* kill semantics: :meth:`on_kill` (Airflow 3.3+: the task was marked failed or cleared) stops the
  job when the task owns it and is no longer deferred (Airflow calls it too when a trigger moves to
  another triggerer); :meth:`cleanup` (every exit, including a triggerer restart) never does.

A kind of wait is a subclass that says how to read the job's state once (:meth:`poll`) and how to
stop the job (:meth:`stop_job`).
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire._http_async import close_shared_clients, ssl_context
from airflow_provider_spotfire.exceptions import SpotfireApiError, SpotfireError
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook
from airflow_provider_spotfire.triggers.events import EventStatus, JobState, SpotfireTriggerEvent
from airflow_provider_spotfire.triggers.schedule import PollSchedule

# A status poll is retried (429/5xx/connection errors, Retry-After honoured) for up to ~10 minutes:
# a server restart or network blip does not end 1,000 waits; a server gone for longer does.
POLL_RETRY_POLICY = RetryPolicy(max_attempts=12, initial_backoff=1.0, max_backoff=60.0, max_total_wait=600.0)
# on_kill runs within the triggerer's own bound ([triggerer] on_kill_timeout, 30 s by default):
# stopping the job gets a few quick attempts rather than the 10-minute poll budget.
STOP_RETRY_POLICY = RetryPolicy(max_attempts=3, initial_backoff=0.5, max_backoff=2.0, max_total_wait=10.0)
STOP_TIMEOUT = 12.0
# on_kill reads the task's state before stopping the job: both within [triggerer] on_kill_timeout (30 s)
TASK_STATE_TIMEOUT = 15.0
# The connection is read again after this many seconds so that edits reach running triggers.
HOOK_TTL = 300.0
# Status requests in flight at once per event loop, below the shared session's pool size
# (_http_async.POOL_SIZE): more would queue inside the pool; 1,000 jobs polled every 5 s need ~200/s.
MAX_CONCURRENT_POLLS = 20


class _LoopShared:
    """What the triggers of one event loop share: hooks by (connection id, retry policy), the poll cap."""

    def __init__(self) -> None:
        self.hooks: dict[tuple[str, RetryPolicy], tuple[float, SpotfireAsyncHook]] = {}
        self.lock = asyncio.Lock()
        self.polls = asyncio.Semaphore(MAX_CONCURRENT_POLLS)
        self.active = 0  # triggers of this loop waiting now

    async def hook(self, spotfire_conn_id: str, policy: RetryPolicy) -> SpotfireAsyncHook:
        key = (spotfire_conn_id, policy)
        entry = self.hooks.get(key)
        if entry is None or time.monotonic() - entry[0] > HOOK_TTL:
            async with self.lock:  # 1,000 triggers starting together make one connection lookup
                entry = self.hooks.get(key)
                if entry is None or time.monotonic() - entry[0] > HOOK_TTL:
                    entry = self.hooks[key] = self._sibling(spotfire_conn_id, policy) or await self._read(
                        spotfire_conn_id, policy
                    )
        return entry[1]

    def _sibling(self, spotfire_conn_id: str, policy: RetryPolicy) -> tuple[float, SpotfireAsyncHook] | None:
        """The connection already read for another retry policy (stopping a job asks no round trip)."""
        for (conn_id, _), (read_at, hook) in self.hooks.items():
            if conn_id == spotfire_conn_id and time.monotonic() - read_at <= HOOK_TTL:
                return read_at, hook.with_retry_policy(policy)
        return None

    @staticmethod
    async def _read(spotfire_conn_id: str, policy: RetryPolicy) -> tuple[float, SpotfireAsyncHook]:
        hook = SpotfireAsyncHook(spotfire_conn_id, retry_policy=policy)
        config = await hook.aconfig()
        # loading a CA bundle takes ~0.1 s of CPU: in a thread, not on the triggerer's loop
        await asyncio.to_thread(ssl_context, config.verify)
        return time.monotonic(), hook


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShared] = weakref.WeakKeyDictionary()


def loop_shared() -> _LoopShared:
    """The running loop's shared hooks and poll cap (created on first use)."""
    loop = asyncio.get_running_loop()
    shared = _SHARED.get(loop)
    if shared is None:
        shared = _SHARED[loop] = _LoopShared()
    return shared


async def read_task_state(ti: Any) -> str | None:
    """The current state of task instance ``ti`` (dag_id, run_id, task_id, map_index), asked of the triggerer's
    Task SDK supervisor (``GetTaskStates``); None when this Airflow's triggerer cannot be asked."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None or not hasattr(comms, "asend"):  # only Airflow 3.3+ calls on_kill, with async comms
        return None
    map_index = -1 if getattr(ti, "map_index", None) is None else int(ti.map_index)
    result = await comms.asend(
        GetTaskStates(dag_id=ti.dag_id, map_index=map_index, task_ids=[ti.task_id], run_ids=[ti.run_id])
    )
    key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
    state = ((getattr(result, "task_states", None) or {}).get(ti.run_id) or {}).get(key)
    return None if state is None else str(getattr(state, "value", state))


class SpotfirePollingTrigger(BaseTrigger):
    """Base of the Spotfire waits: polls :meth:`poll` until it returns an event or the deadline passes.

    :param job_id: the job to wait for.
    :param spotfire_conn_id: the ``spotfire`` connection (the only credential reference kept).
    :param poll_interval: seconds between polls, or a :class:`PollSchedule` (or its dict).
    :param deadline: epoch seconds after which the wait ends with a ``timeout`` event.
    :param started_at: epoch seconds the job started (its age drives a growing schedule).
    :param task_label: ``dag.task (run ..., try n)``, used in stop reasons.
    """

    #: what the job is called in messages, e.g. "Automation Services job"
    job_kind: ClassVar[str] = "job"
    #: what stopping the job is called in messages ("aborted", "cancelled")
    stopped_word: ClassVar[str] = "stopped"

    def __init__(
        self,
        job_id: str,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float | PollSchedule | dict[str, Any] = 15.0,
        deadline: float | None = None,
        started_at: float | None = None,
        task_label: str | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.spotfire_conn_id = spotfire_conn_id
        self.schedule = PollSchedule.of(
            poll_interval
            if isinstance(poll_interval, PollSchedule | dict)
            else validate.seconds("poll_interval", poll_interval)
        )
        self.deadline = validate.epoch_deadline("deadline", deadline)
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.task_label = task_label
        self.remote_state: str | None = None  # the server's last word on the job

    @property
    def poll_interval(self) -> float:
        return self.schedule.interval

    # ------------------------------------------------------------------ what a subclass provides
    def extra_kwargs(self) -> dict[str, Any]:
        """The subclass's own JSON-safe kwargs (merged into :meth:`serialize`)."""
        return {}

    async def poll(self, hook: SpotfireAsyncHook) -> SpotfireTriggerEvent | None:
        """Read the job's state once: the final event, or None to keep waiting (sets :attr:`remote_state`)."""
        raise NotImplementedError

    async def stop_job(self, hook: SpotfireAsyncHook, reason: str) -> None:
        """Abort or cancel the job on the server (bounded by the caller)."""
        raise NotImplementedError

    def stops_at_deadline(self) -> bool:
        """Whether the trigger stops the job itself when the deadline passes."""
        return False

    def stops_on_kill(self) -> bool:
        """Whether :meth:`on_kill` stops the job (the task owns it)."""
        return False

    def event_details(self) -> dict[str, Any]:
        """Details added to every event of this trigger."""
        return {}

    # ------------------------------------------------------------------ shared machinery
    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs: ids, numbers and flags, never a secret."""
        kwargs = {
            "job_id": self.job_id,
            "spotfire_conn_id": self.spotfire_conn_id,
            "poll_interval": self.schedule.to_kwarg(),
            "deadline": self.deadline,
            "started_at": self.started_at,
            "task_label": self.task_label,
        }
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs | self.extra_kwargs()

    @property
    def what(self) -> str:
        return f"{self.job_kind} {self.job_id}"

    def event(
        self, status: EventStatus, job_state: JobState | None, message: str, /, **details: Any
    ) -> SpotfireTriggerEvent:
        """An event of this trigger in the shared vocabulary (with :attr:`remote_state`)."""
        return SpotfireTriggerEvent(
            status, self.job_id, job_state, message, self.event_details() | details, self.remote_state
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll per the schedule until :meth:`poll` gives an event, an error or the deadline passes."""
        shared = loop_shared()
        shared.active += 1
        try:
            event = await self._wait(shared)
        finally:
            shared.active -= 1
            if not shared.active:  # the loop's last wait: release its connections (loops end: dag.test())
                await close_shared_clients()
        yield TriggerEvent(event.to_dict())

    async def _wait(self, shared: _LoopShared) -> SpotfireTriggerEvent:
        await asyncio.sleep(self._until_next_poll(random.uniform(0, self.schedule.delay(self._age()))))
        while True:
            try:
                hook = await shared.hook(self.spotfire_conn_id, POLL_RETRY_POLICY)
                async with shared.polls:
                    event = await self.poll(hook)
            except Exception as exc:  # after the retry policy: the task decides what to do
                event = self.error_event(exc)
            if event is None and self.deadline is not None and time.time() >= self.deadline:
                event = await self.deadline_event()
            if event is not None:
                return event
            await asyncio.sleep(self._until_next_poll(self.schedule.delay(self._age())))

    def _age(self) -> float:
        return time.time() - self.started_at

    def _until_next_poll(self, delay: float) -> float:
        """``delay``, cut short so that a poll happens right at the deadline."""
        if self.deadline is not None:
            delay = min(delay, self.deadline - time.time())
        return max(delay, 0.0)

    def error_event(self, exc: BaseException) -> SpotfireTriggerEvent:
        """The ``error`` event for a status that could not be read (after the retry policy)."""
        details: dict[str, Any] = {}
        if isinstance(exc, SpotfireApiError):
            details["error"] = exc.to_dict()
        reason = str(exc) if isinstance(exc, SpotfireError) else f"{type(exc).__name__}: {exc}"
        return self.event("error", None, f"Could not read the status of {self.what}: {reason}", **details)

    async def deadline_event(self) -> SpotfireTriggerEvent:
        """The ``timeout`` event (after stopping the job when :meth:`stops_at_deadline`)."""
        when = datetime.fromtimestamp(self.deadline or 0, UTC).isoformat(timespec="seconds")
        message = f"{self.what} was still {self.remote_state or 'running'} at the wait's deadline {when}"
        stopped = False
        if self.stops_at_deadline():
            stopped = await self.stop(f"{self.label()} exceeded its execution_timeout")
            word = self.stopped_word
            message += (
                f"; the job was {word}." if stopped else f"; the job could not be {word} (see the log)."
            )
        return self.event("timeout", JobState.WAITING, message, aborted=stopped)

    def label(self) -> str:
        return f"Airflow task {self.task_label}" if self.task_label else "Airflow"

    async def stop(self, reason: str) -> bool:
        """Stop the job (bounded in time); True when the server accepted or no longer knows it."""
        try:
            hook = await loop_shared().hook(self.spotfire_conn_id, STOP_RETRY_POLICY)
            await asyncio.wait_for(self.stop_job(hook, reason), timeout=STOP_TIMEOUT)
        except Exception as exc:
            self.log.warning("Could not stop (%s) %s: %s", self.stopped_word, self.what, exc)
            return False
        self.log.info("%s %s (reason: %s).", self.stopped_word.capitalize(), self.what, reason)
        return True

    async def on_kill(self) -> None:
        """A user marked the deferred task failed or cleared it: stop the job when the task owns it.

        Airflow 3.3 also calls ``on_kill`` on a triggerer that loses a trigger to another triggerer (one
        it took for dead, or two claiming the same trigger). The task is then still deferred and the
        other triggerer goes on waiting, so the job is left running: the task's state is read first.
        """
        if not self.stops_on_kill():
            return
        state = await self.task_state()
        if state == "deferred":
            self.log.warning(
                "%s is still deferred: this trigger moved to another triggerer, which goes on waiting; "
                "%s is left running.",
                self.label(),
                self.what,
            )
            return
        await self.stop(f"{self.label()} was marked failed or cleared by a user")

    async def task_state(self) -> str | None:
        """The deferred task's state now, through the Task SDK (None when it cannot be read)."""
        ti = self.task_instance
        if ti is None:
            return None
        try:
            return await asyncio.wait_for(read_task_state(ti), timeout=TASK_STATE_TIMEOUT)
        except Exception as exc:  # an Airflow without the call, or no supervisor: stop the job as asked
            self.log.warning("Could not read the state of %s (%s); treating it as killed.", self.label(), exc)
            return None

    async def cleanup(self) -> None:
        """Runs on every exit, including a triggerer restart: the remote job is deliberately left running."""
        await super().cleanup()


__all__ = ["MAX_CONCURRENT_POLLS", "POLL_RETRY_POLICY", "PollSchedule", "SpotfirePollingTrigger"]
