"""SpotfirePollingTrigger, the base of every Spotfire wait, with a small third kind of wait written here.

``ScriptedWait`` is what a new kind of wait costs: a ``poll`` that reads the job's state once and a
``stop_job``. Its states come from a script, so the base's own behaviour (shared hook, poll cap,
spread first polls, schedule, deadline, errors, kill semantics) is observed without depending on
a job's timing; the hook it is handed is real (the emulator connection).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import pytest

from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireConfigurationError,
    SpotfireError,
    SpotfireJobError,
    SpotfireTimeoutError,
)
from airflow_provider_spotfire.triggers import base
from airflow_provider_spotfire.triggers.base import SpotfirePollingTrigger
from airflow_provider_spotfire.triggers.events import JobState, SpotfireTriggerEvent, validate_event
from airflow_provider_spotfire.triggers.schedule import PollSchedule


class ScriptedWait(SpotfirePollingTrigger):
    """A third kind of wait: states from a script ("open", "done", "broken", or an exception)."""

    job_kind = "scripted job"
    stopped_word = "stopped"

    def __init__(self, job_id: str, script: list[Any] | None = None, owned: bool = True, **kwargs: Any):
        super().__init__(job_id, **kwargs)
        self.script = list(script or ["open", "done"])
        self.owned = owned
        self.polls: list[float] = []
        self.hooks: set[int] = set()
        self.stops: list[str] = []

    def stops_on_kill(self) -> bool:
        return self.owned

    def stops_at_deadline(self) -> bool:
        return self.owned

    async def poll(self, hook: Any) -> SpotfireTriggerEvent | None:
        self.polls.append(time.monotonic())
        self.hooks.add(id(hook))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        self.remote_state = step
        if step == "done":
            return self.event("success", JobState.FINISHED, "done")
        if step == "broken":
            return self.event("failed", JobState.FAILED, "broken")
        return None

    async def stop_job(self, hook: Any, reason: str) -> None:
        self.stops.append(reason)


async def first(trigger: SpotfirePollingTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


# ---- sharing and pacing -----------------------------------------------------------------------------
async def test_one_hook_per_loop_and_connection(spotfire_conn_id):
    waits = [ScriptedWait(f"j{i}", poll_interval=0.05, spotfire_conn_id=spotfire_conn_id) for i in range(30)]
    events = await asyncio.gather(*(first(w) for w in waits))
    assert {e["status"] for e in events} == {"success"}
    assert len(set().union(*(w.hooks for w in waits))) == 1


async def test_polls_in_flight_are_capped(spotfire_conn_id, monkeypatch):
    monkeypatch.setattr(base, "MAX_CONCURRENT_POLLS", 4)
    in_flight = peak = 0

    class SlowPoll(ScriptedWait):
        async def poll(self, hook: Any) -> SpotfireTriggerEvent | None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            return await super().poll(hook)

    waits = [SlowPoll(f"j{i}", poll_interval=0.01, spotfire_conn_id=spotfire_conn_id) for i in range(40)]
    await asyncio.gather(*(first(w) for w in waits))
    assert peak == 4


async def test_first_polls_are_spread_over_the_first_interval(spotfire_conn_id):
    start = time.monotonic()
    waits = [
        ScriptedWait(f"j{i}", ["done"], poll_interval=1.0, spotfire_conn_id=spotfire_conn_id)
        for i in range(60)
    ]
    await asyncio.gather(*(first(w) for w in waits))
    offsets = [w.polls[0] - start for w in waits]
    assert max(offsets) <= 1.5 and max(offsets) - min(offsets) > 0.5
    assert statistics.pstdev(offsets) > 0.15  # all at once would be ~0


async def test_growing_schedule_polls_an_old_job_less_often(spotfire_conn_id):
    fixed = ScriptedWait(
        "f", ["open"] * 200 + ["done"], poll_interval=0.02, spotfire_conn_id=spotfire_conn_id
    )
    grown = ScriptedWait(
        "g",
        ["open"] * 200 + ["done"],
        poll_interval=PollSchedule.adaptive(0.02, max_interval=0.2, age_fraction=0.5),
        started_at=time.time() - 10,  # 10 s old: 0.5 x age is above the cap
        spotfire_conn_id=spotfire_conn_id,
    )
    fixed.deadline = grown.deadline = time.time() + 1.0
    events = await asyncio.gather(first(fixed), first(grown))
    assert [e["status"] for e in events] == ["timeout", "timeout"]
    assert len(grown.polls) <= 7 < 20 <= len(fixed.polls)
    gaps = [b - a for a, b in zip(grown.polls, grown.polls[1:], strict=False)]
    assert min(gaps[:-1]) >= 0.18  # at the cap (the last gap is cut short by the deadline)


# ---- endings ----------------------------------------------------------------------------------------
async def test_deadline_checks_once_more_then_stops_an_owned_job(spotfire_conn_id):
    wait = ScriptedWait("j", ["open"], poll_interval=30, deadline=time.time() + 0.3, task_label="d.t")
    wait.spotfire_conn_id = spotfire_conn_id
    event = await asyncio.wait_for(first(wait), 10)
    assert (event["status"], event["job_state"], event["remote_state"]) == ("timeout", "waiting", "open")
    assert wait.stops == ["Airflow task d.t exceeded its execution_timeout"]
    assert event["details"]["aborted"] is True and "was stopped" in event["message"]
    assert time.monotonic() - wait.polls[-1] < 1  # the last poll was at the deadline, not 30 s later
    with pytest.raises(SpotfireTimeoutError, match="deadline"):
        validate_event(event, job_id="j")


async def test_an_unreadable_status_ends_the_wait_with_one_error_event(spotfire_conn_id):
    refusal = SpotfireApiError("Spotfire answered 503", status_code=503, code="server_busy")
    wait = ScriptedWait("j", [refusal], poll_interval=0.01, spotfire_conn_id=spotfire_conn_id)
    event = await first(wait)
    assert event["status"] == "error" and event["job_state"] is None
    assert event["details"]["error"]["status_code"] == 503 and len(wait.polls) == 1
    assert wait.stops == []  # reporting only: the task decides
    with pytest.raises(SpotfireJobError, match="Could not read the status of scripted job j"):
        validate_event(event)


async def test_on_kill_stops_an_owned_job_and_cleanup_never_does(spotfire_conn_id):
    owned = ScriptedWait("a", ["open"], task_label="d.t", spotfire_conn_id=spotfire_conn_id)
    watched = ScriptedWait("b", ["open"], owned=False, spotfire_conn_id=spotfire_conn_id)
    for wait in (owned, watched):
        task = asyncio.create_task(first(wait))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait.cleanup()
    assert owned.stops == watched.stops == []  # a triggerer restart (cancel + cleanup) stops nothing
    await owned.on_kill()
    await watched.on_kill()
    assert owned.stops == ["Airflow task d.t was marked failed or cleared by a user"]
    assert watched.stops == []


def test_serialize_round_trips_the_schedule_and_keeps_the_start(spotfire_conn_id):
    schedule = PollSchedule.adaptive(5, max_interval=60, age_fraction=0.1)
    wait = ScriptedWait("j", poll_interval=schedule, started_at=1000.0, deadline=2000.0)
    classpath, kwargs = wait.serialize()
    assert classpath.endswith("ScriptedWait")
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["poll_interval"] == {"interval": 5.0, "max_interval": 60.0, "age_fraction": 0.1}
    again = ScriptedWait(**kwargs)
    assert again.schedule == schedule and again.started_at == 1000.0
    assert ScriptedWait("j", poll_interval=7).serialize()[1]["poll_interval"] == 7.0  # fixed: a number


# ---- PollSchedule -----------------------------------------------------------------------------------
def test_poll_schedule_delays():
    fixed = PollSchedule(15)
    assert fixed.is_fixed and fixed.delay(0) == fixed.delay(10_000) == 15
    grows = PollSchedule.adaptive(5, max_interval=120, age_fraction=0.1)
    assert [grows.delay(age) for age in (0, 30, 50, 300, 1200, 10_000)] == [5, 5, 5, 30, 120, 120]
    assert PollSchedule.of({"interval": 5, "max_interval": 120, "age_fraction": 0.1}) == grows


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0, "positive"),
        (True, "positive"),
        ("5", "positive"),
        ({"interval": 5, "cap": 9}, "expected keys"),
        ({"interval": 5, "max_interval": 2}, "max_interval must be"),
        ({"interval": 5, "age_fraction": 0.5}, "needs a max_interval"),
        ({"interval": 5, "max_interval": 50, "age_fraction": 2}, "age_fraction"),
    ],
)
def test_poll_schedule_rejects_bad_values_with_the_fix(value, match):
    with pytest.raises(SpotfireConfigurationError, match=match):
        PollSchedule.of(value)


# ---- the one event vocabulary and validator ---------------------------------------------------------
def test_validator_reads_events_of_earlier_trigger_versions():
    old_as = {"status": "success", "job_id": "j", "job_state": "Finished", "message": "", "details": {}}
    parsed = validate_event(old_as)
    assert (parsed.job_state, parsed.remote_state) == (JobState.FINISHED, "Finished")
    old_upload = {"status": "failed", "job_id": "j", "job_state": "cancelled", "message": "gone"}
    with pytest.raises(SpotfireJobError) as info:
        validate_event(old_upload)
    assert info.value.status == "cancelled"


@pytest.mark.parametrize(
    "event",
    [
        None,
        {"status": "done", "job_id": "j"},
        {"status": "success", "job_id": ""},
        {"status": "success", "job_id": "j", "job_state": "waiting"},
    ],
)
def test_validator_rejects_malformed_events(event):
    with pytest.raises(SpotfireError, match="bug"):
        validate_event(event)


def test_validator_rejects_an_event_of_another_job():
    event = SpotfireTriggerEvent("success", "j1", JobState.FINISHED).to_dict()
    with pytest.raises(SpotfireError, match="expected j2"):
        validate_event(event, job_id="j2")


# ---- operators and sensors hand the schedule to their trigger ---------------------------------------
def test_sensors_and_operator_defer_with_their_poll_schedule(spotfire_conn_id):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
    from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
    from airflow_provider_spotfire.sensors.automation import SpotfireAutomationJobSensor
    from tests.automation.conftest import NIGHTLY_BATCH

    schedule = PollSchedule.adaptive(1, max_interval=30, age_fraction=0.2)
    hook = SpotfireHook(spotfire_conn_id)
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    sensor = SpotfireAutomationJobSensor(
        task_id="wait", job_id=job_id, deferrable=True, poll_schedule=schedule, timeout=60
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    assert info.value.trigger.schedule == schedule
    assert info.value.trigger.serialize()[1]["poll_interval"] == schedule.to_dict()
    with pytest.raises(SpotfireConfigurationError, match="poll_interval"):
        SpotfireRunAutomationJobOperator(task_id="bad", library_path=NIGHTLY_BATCH, poll_interval=-1)
    operator = SpotfireRunAutomationJobOperator(
        task_id="ok", library_path=NIGHTLY_BATCH, poll_interval=schedule
    )
    assert operator.poll_schedule == schedule and operator.poll_interval == 1.0
    hook.abort_automation_job(job_id, "test over")
    hook.close()
