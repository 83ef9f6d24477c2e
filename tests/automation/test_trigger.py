"""SpotfireAutomationJobTrigger driven directly (``async for event in trigger.run()``) on the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import pytest
import structlog.testing

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


def _attach_task(trigger, monkeypatch, state=None, error=None):
    """Give the trigger the task instance the triggerer would, and answer the Task SDK's state lookup."""
    from types import SimpleNamespace

    from airflow_provider_spotfire.triggers import base

    asked = []

    async def read_task_state(ti):
        asked.append((ti.dag_id, ti.run_id, ti.task_id, ti.map_index))
        if error is not None:
            raise error
        return state

    monkeypatch.setattr(base, "read_task_state", read_task_state)
    trigger.task_instance = SimpleNamespace(
        dag_id="dag_a", run_id="r1", task_id="task_b", map_index=3, try_number=1
    )
    return asked


async def test_on_kill_leaves_the_job_when_the_task_is_still_deferred(
    hook, spotfire_conn_id, spotfire_emulator, monkeypatch
):
    # Airflow 3.3 calls on_kill on a triggerer that lost the trigger to another one: the task is still
    # deferred there, so its job must keep running
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    trigger = make_trigger(spotfire_conn_id, job_id, task_label="dag_a.task_b (run r1, try 1)")
    asked = _attach_task(trigger, monkeypatch, state="deferred")
    await _run_then_cancel(trigger)
    with structlog.testing.capture_logs() as logs:
        await trigger.on_kill()
    assert asked == [("dag_a", "r1", "task_b", 3)]
    record = as_job(spotfire_emulator, job_id)
    assert record["status"] in ("Queued", "InProgress") and record["abortedAt"] is None
    assert [
        e["log_level"]
        for e in logs
        if "moved to another triggerer" in e["event"] % e.get("positional_args", ())
    ] == ["warning"]


@pytest.mark.parametrize(
    ("state", "error"),
    [("failed", None), (None, None), ("success", None), (None, RuntimeError("no supervisor"))],
)
async def test_on_kill_aborts_when_the_task_is_no_longer_deferred(
    hook, spotfire_conn_id, spotfire_emulator, monkeypatch, state, error
):
    # marked failed/success, cleared (no state yet), or a state that cannot be read: the user's kill wins
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    trigger = make_trigger(spotfire_conn_id, job_id, task_label="dag_a.task_b (run r1, try 1)")
    _attach_task(trigger, monkeypatch, state=state, error=error)
    await _run_then_cancel(trigger)
    await trigger.on_kill()
    record = as_job(spotfire_emulator, job_id)
    assert record["status"] == "Canceled"
    assert record["abortReason"].endswith("was marked failed or cleared by a user")


async def test_read_task_state_asks_the_triggerers_supervisor_for_this_mapped_task(monkeypatch):
    from types import SimpleNamespace

    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult

    from airflow_provider_spotfire.triggers.base import read_task_state

    sent = []

    class Comms:  # the triggerer's TriggerCommsDecoder answers GetTaskStates with a TaskStatesResult
        async def asend(self, msg):
            sent.append(msg)
            return TaskStatesResult(
                task_states={"r1": {"task_b_3": "deferred", "task_b_4": "failed", "task_b": "success"}}
            )

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Comms(), raising=False)
    mapped = SimpleNamespace(dag_id="dag_a", run_id="r1", task_id="task_b", map_index=3)
    assert await read_task_state(mapped) == "deferred"
    assert sent == [GetTaskStates(dag_id="dag_a", map_index=3, task_ids=["task_b"], run_ids=["r1"])]
    assert (
        await read_task_state(SimpleNamespace(dag_id="dag_a", run_id="r1", task_id="task_b", map_index=-1))
        == "success"
    )
    assert (
        await read_task_state(SimpleNamespace(dag_id="dag_a", run_id="r2", task_id="task_b", map_index=-1))
        is None
    )
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object())  # an Airflow whose comms are sync only
    assert await read_task_state(mapped) is None


async def test_stopping_a_job_reuses_the_connection_already_read(
    hook, spotfire_conn_id, spotfire_emulator, monkeypatch
):
    # on_kill runs under the triggerer's on_kill_timeout: stopping must not wait for a second connection lookup
    from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook

    lookups = []
    real = SpotfireAsyncHook.aconfig

    async def counting_aconfig(self):
        if self._config is None:
            lookups.append(self.spotfire_conn_id)
        return await real(self)

    monkeypatch.setattr(SpotfireAsyncHook, "aconfig", counting_aconfig)
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    trigger = make_trigger(spotfire_conn_id, job_id)
    await _run_then_cancel(trigger)  # polls once at least: the connection is read
    await trigger.on_kill()
    assert lookups == [spotfire_conn_id]
    assert as_job(spotfire_emulator, job_id)["status"] == "Canceled"


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
