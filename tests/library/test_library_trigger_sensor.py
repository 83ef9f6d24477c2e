"""SpotfireUploadJobTrigger and SpotfireUploadJobSensor against the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_spotfire.api.library import FIRST_CHUNK
from airflow_provider_spotfire.exceptions import SpotfireJobError
from airflow_provider_spotfire.sensors.library import SpotfireUploadJobSensor
from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger
from tests.library.conftest import REPORTS, sbdf_bytes, upload_jobs

UNKNOWN = "00000000-0000-0000-0000-000000000000"


async def first_event(trigger: SpotfireUploadJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger fired no event")


def open_job(hook: Any, title: str) -> Any:
    data = sbdf_bytes(1000)
    job = hook.create_upload_job(f"{REPORTS}/{title}", number_of_bytes=len(data), number_of_chunks=1)
    hook.upload_chunk(job, FIRST_CHUNK, data)
    return job


def remote_status(emulator: Any, job_id: str) -> str:
    return next(j["status"] for j in upload_jobs(emulator) if j["jobId"] == job_id)


# ---- trigger --------------------------------------------------------------------------------------
def test_trigger_kwargs_round_trip_and_hold_no_secret():
    trigger = SpotfireUploadJobTrigger(
        "J1",
        "spotfire_default",
        poll_interval=3,
        deadline=123.0,
        links={"getStatusLinkRel": "/spotfire/api/rest/library/v1/upload/J1", "bogus": "x"},
        library_path="/a/b",
        cancel_on_kill=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_spotfire.triggers.library.SpotfireUploadJobTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["links"] == {"getStatusLinkRel": "/spotfire/api/rest/library/v1/upload/J1"}
    assert SpotfireUploadJobTrigger(**kwargs).serialize() == (classpath, kwargs)


async def test_trigger_waits_until_the_job_is_finished(spotfire_emulator, hook):
    job = open_job(hook, "polled")
    trigger = SpotfireUploadJobTrigger(job.job_id, "spotfire_default", poll_interval=0.1, links=job.links)
    task = asyncio.ensure_future(first_event(trigger))
    await asyncio.sleep(0.5)
    assert not task.done()  # still open: the trigger keeps polling
    await asyncio.to_thread(hook.finish_upload_job, job)
    event = await asyncio.wait_for(task, 10)
    assert event["status"] == "success" and event["job_id"] == job.job_id and event["job_state"] == "finished"
    assert event["remote_state"] == "finished"
    assert event["details"]["uploaded_chunks"] == [FIRST_CHUNK] and event["details"]["finished_at"]
    gets = [
        r
        for r in spotfire_emulator.requests_log(
            path_prefix=f"/spotfire/api/rest/library/v1/upload/{job.job_id}"
        )
    ]
    assert sum(r["method"] == "GET" for r in gets) >= 3


async def test_trigger_reports_a_cancelled_job(spotfire_emulator, hook):
    job = open_job(hook, "cancelled")
    hook.cancel_upload_job(job)
    event = await first_event(SpotfireUploadJobTrigger(job.job_id, poll_interval=0.1))
    assert event["status"] == "failed" and (event["job_state"], event["remote_state"]) == (
        "failed",
        "cancelled",
    )
    assert "cancelled" in event["message"]


async def test_trigger_reports_an_unknown_job(spotfire_emulator, spotfire_conn_id):
    event = await first_event(SpotfireUploadJobTrigger(UNKNOWN, poll_interval=0.1))
    assert event["status"] == "failed" and "no longer knows" in event["message"]


async def test_trigger_deadline_fires_a_timeout_and_leaves_cancelling_to_the_task(spotfire_emulator, hook):
    job = open_job(hook, "slow")
    trigger = SpotfireUploadJobTrigger(
        job.job_id, poll_interval=0.1, deadline=time.time() + 0.3, cancel_on_kill=True
    )
    event = await first_event(trigger)
    assert event["status"] == "timeout" and "deadline" in event["message"]
    await trigger.cleanup()  # cleanup never cancels remote work
    assert remote_status(spotfire_emulator, job.job_id) == "open"
    hook.cancel_upload_job(job)


async def test_trigger_on_kill_cancels_only_its_own_job(spotfire_emulator, hook):
    watched = open_job(hook, "watched")
    owned = open_job(hook, "owned")
    await SpotfireUploadJobTrigger(watched.job_id, cancel_on_kill=False).on_kill()
    await SpotfireUploadJobTrigger(owned.job_id, cancel_on_kill=True, links=owned.links).on_kill()
    assert remote_status(spotfire_emulator, watched.job_id) == "open"
    assert remote_status(spotfire_emulator, owned.job_id) == "cancelled"
    hook.cancel_upload_job(watched)


# ---- sensor ---------------------------------------------------------------------------------------
def test_sensor_pokes_until_finished(spotfire_emulator, hook):
    job = open_job(hook, "sensed")
    sensor = SpotfireUploadJobSensor(task_id="wait", job_id=job.job_id, deferrable=False)
    assert sensor.poke({}).is_done is False
    hook.finish_upload_job(job)
    done = sensor.poke({})
    assert done.is_done is True and done.xcom_value["job_id"] == job.job_id and done.xcom_value["finished_at"]


@pytest.mark.parametrize("case", ["cancelled", "unknown", "empty"])
def test_sensor_fails_clearly(spotfire_emulator, hook, case):
    if case == "cancelled":
        job_id = open_job(hook, "gone").job_id
        hook.cancel_upload_job(job_id)
        match = "was cancelled"
    elif case == "unknown":
        job_id, match = UNKNOWN, "does not know upload job"
    else:
        job_id, match = " ", "job_id is empty"
    with pytest.raises(SpotfireJobError, match=match):
        SpotfireUploadJobSensor(task_id="wait", job_id=job_id, deferrable=False).poke({})


async def test_deferrable_sensor_waits_in_the_trigger_and_never_cancels(spotfire_emulator, hook):
    job = open_job(hook, "deferred-sensor")
    sensor = SpotfireUploadJobSensor(
        task_id="wait", job_id=job.job_id, deferrable=True, poke_interval=0.1, timeout=30
    )
    with pytest.raises(TaskDeferred) as info:
        await asyncio.to_thread(sensor.execute, {})
    trigger = info.value.trigger
    assert trigger.cancel_on_kill is False and trigger.deadline is not None
    assert info.value.timeout is None  # the trigger's deadline is the only limit
    await trigger.on_kill()
    assert remote_status(spotfire_emulator, job.job_id) == "open"
    await asyncio.to_thread(hook.finish_upload_job, job)
    event = await first_event(trigger)
    out = sensor.execute_complete({}, event)
    assert out["job_id"] == job.job_id and out["state"] == "finished"


def test_deferrable_sensor_returns_at_once_for_a_finished_job(spotfire_emulator, hook):
    job = open_job(hook, "done-already")
    hook.finish_upload_job(job)
    out = SpotfireUploadJobSensor(task_id="wait", job_id=job.job_id, deferrable=True).execute({})
    assert out["finished_at"]
