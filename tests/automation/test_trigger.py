"""SpotfireAutomationJobTrigger driven directly (``async for event in trigger.run()``) on the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import pytest

from airflow_provider_spotfire.exceptions import SpotfireJobError, SpotfireTimeoutError
from airflow_provider_spotfire.triggers.automation import SpotfireAutomationJobTrigger
from airflow_provider_spotfire.triggers.events import validate_event
from tests.automation.conftest import (
    BROKEN_EXPORT,
    EXPORT_FINANCE,
    NIGHTLY_BATCH,
    STATUS_NOT_SET,
    as_job,
)


def make_trigger(conn_id: str, job_id: str, **kwargs) -> SpotfireAutomationJobTrigger:
    kwargs.setdefault("poll_interval", 0.1)
    return SpotfireAutomationJobTrigger(job_id=job_id, spotfire_conn_id=conn_id, **kwargs)


async def first_event(trigger: SpotfireAutomationJobTrigger) -> dict:
    events = []
    async for event in trigger.run():
        events.append(event.payload)
        break
    assert len(events) == 1
    return events[0]


async def test_finished_job_fires_success_with_state_history(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=EXPORT_FINANCE).job_id
    event = await first_event(make_trigger(spotfire_conn_id, job_id))
    parsed = validate_event(event, job_id=job_id)
    assert (parsed.job_state, parsed.remote_state) == ("finished", "Finished")
    assert parsed.details["status"]["StatusCode"] == "Finished"
    states = [state for state, _ in parsed.details["history"]]
    assert states[-1] == "Finished" and len(states) == len(set(states))  # one entry per change
    json.dumps(event)  # events are JSON-safe


@pytest.mark.parametrize(
    ("library_path", "state", "message"),
    [
        (BROKEN_EXPORT, "Failed", "Could not open analysis /Airflow/Reports/Missing"),
        (STATUS_NOT_SET, "NotSet", "not a state the job can finish from"),
    ],
)
async def test_failed_outcomes_fire_failed_with_the_server_message(
    hook, spotfire_conn_id, spotfire_emulator, library_path, state, message
):
    job_id = hook.start_automation_job_from_library(library_path=library_path).job_id
    event = await first_event(make_trigger(spotfire_conn_id, job_id))
    assert (event["status"], event["remote_state"]) == ("failed", state)
    assert event["job_state"] == ("failed" if state == "Failed" else "undetermined")
    with pytest.raises(SpotfireJobError, match=message):
        validate_event(event, job_id=job_id)


async def test_canceled_job_fires_failed(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    hook.abort_automation_job(job_id, "operator on duty")
    event = await first_event(make_trigger(spotfire_conn_id, job_id))
    assert (event["job_state"], event["remote_state"]) == ("failed", "Canceled")
    assert "operator on duty" in event["message"]


async def test_missing_job_fires_failed(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    spotfire_emulator.forget_as_job(job_id)
    event = await first_event(make_trigger(spotfire_conn_id, job_id))
    assert (event["status"], event["job_state"], event["remote_state"]) == ("failed", "failed", "Missing")


async def test_unknown_job_id_fires_failed_missing(spotfire_conn_id, spotfire_emulator):
    event = await first_event(make_trigger(spotfire_conn_id, "00000000-0000-0000-0000-000000000000"))
    assert (event["status"], event["job_state"], event["remote_state"]) == ("failed", "failed", "Missing")


async def test_deadline_checks_once_more_then_aborts_the_job(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    deadline = time.time() + 0.5
    trigger = make_trigger(spotfire_conn_id, job_id, poll_interval=30, deadline=deadline, task_label="d.t")
    event = await asyncio.wait_for(first_event(trigger), timeout=10)  # the deadline shortens the 30 s poll
    assert event["status"] == "timeout" and event["details"]["aborted"] is True
    with pytest.raises(SpotfireTimeoutError, match="deadline"):
        validate_event(event, job_id=job_id)
    record = as_job(spotfire_emulator, job_id)
    assert record["status"] == "Canceled"
    assert record["abortReason"] == "Airflow task d.t exceeded its execution_timeout"
    reads = spotfire_emulator.requests_log(path_prefix=f"/spotfire/api/rest/as/job/status/{job_id}")
    read_times = [datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() for r in reads]
    assert read_times and read_times[-1] >= deadline - 0.05  # the last check is at the deadline
    assert sum(t >= deadline - 0.05 for t in read_times) == 1  # ... and there is only one


async def test_deadline_without_abort_leaves_the_job_running(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    trigger = make_trigger(spotfire_conn_id, job_id, deadline=time.time() + 0.2, abort_unfinished=False)
    event = await first_event(trigger)
    assert event["status"] == "timeout"
    assert as_job(spotfire_emulator, job_id)["status"] in ("Queued", "InProgress")


async def _run_then_cancel(trigger: SpotfireAutomationJobTrigger) -> None:
    """What the triggerer does when it stops a trigger: cancel the task running ``run()``."""
    task = asyncio.create_task(first_event(trigger))
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_on_kill_aborts_the_job(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    trigger = make_trigger(spotfire_conn_id, job_id, task_label="dag_a.task_b (run r1, try 1)")
    await _run_then_cancel(trigger)
    await trigger.on_kill()  # a user marked the deferred task failed or cleared it
    await trigger.cleanup()
    record = as_job(spotfire_emulator, job_id)
    assert record["status"] == "Canceled"
    assert record["abortReason"] == (
        "Airflow task dag_a.task_b (run r1, try 1) was marked failed or cleared by a user"
    )


async def test_on_kill_respects_abort_on_kill_false(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    trigger = make_trigger(spotfire_conn_id, job_id, abort_on_kill=False)
    await _run_then_cancel(trigger)
    await trigger.on_kill()
    assert as_job(spotfire_emulator, job_id)["abortReason"] is None


async def test_cleanup_never_aborts_the_job(hook, spotfire_conn_id, spotfire_emulator):
    # A triggerer restart cancels run() and calls cleanup(), but not on_kill(): the job must survive.
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    trigger = make_trigger(spotfire_conn_id, job_id)
    await _run_then_cancel(trigger)
    await trigger.cleanup()
    record = as_job(spotfire_emulator, job_id)
    assert record["status"] in ("Queued", "InProgress") and record["abortedAt"] is None
    assert not spotfire_emulator.requests_log(path_prefix="/spotfire/api/rest/as/job/abort")


async def test_status_errors_become_an_error_event(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    spotfire_emulator.set_config(retry_after=0)
    # more refusals than the poll retry policy allows (POLL_RETRY_POLICY.max_attempts)
    spotfire_emulator.inject_faults(*["503"] * 12, path_prefix="/spotfire/api/rest/as/job/status")
    event = await first_event(make_trigger(spotfire_conn_id, job_id))
    assert event["status"] == "error"
    assert event["details"]["error"]["status_code"] == 503
    with pytest.raises(SpotfireJobError, match="Could not read the status"):
        validate_event(event, job_id=job_id)
    assert as_job(spotfire_emulator, job_id)["abortReason"] is None  # the trigger only reports


def test_serialize_is_json_safe_and_secret_free(spotfire_conn_id, spotfire_emulator):
    trigger = make_trigger(spotfire_conn_id, "job-1", deadline=123.5, task_label="d.t (run r, try 1)")
    classpath, kwargs = trigger.serialize()
    text = json.dumps(kwargs)
    assert classpath == "airflow_provider_spotfire.triggers.automation.SpotfireAutomationJobTrigger"
    assert spotfire_emulator.client_secret("airflow") not in text
    assert "token" not in text.lower()
    again = SpotfireAutomationJobTrigger(**json.loads(text))
    assert again.serialize() == (classpath, kwargs)
