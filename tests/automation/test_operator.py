"""SpotfireRunAutomationJobOperator and SpotfireAutomationJobSensor against the emulator.

The operator runs with a minimal task context (``ti`` that records XCom pushes, an in-memory
``task_state_store``); every remote effect is checked in the emulator's own job records. DAG runs
through ``dag.test()`` are in ``test_dags.py``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred

from airflow_provider_spotfire.api.automation import BusyRetry, SpotfireAutomationBusyError
from airflow_provider_spotfire.exceptions import (
    SpotfireConfigurationError,
    SpotfireJobError,
    SpotfireTimeoutError,
)
from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
from airflow_provider_spotfire.sensors.automation import SpotfireAutomationJobSensor
from airflow_provider_spotfire.triggers.automation import SpotfireAutomationJobTrigger
from tests.automation.conftest import (
    BROKEN_EXPORT,
    EXPORT_FINANCE,
    EXPORT_FINANCE_ID,
    NIGHTLY_BATCH,
    STATUS_NOT_SET,
    as_job,
    as_jobs,
    as_starts,
    job_xml,
    requires_resumable,
)


@dataclass
class RecordingTI:
    """The part of a task instance the operator uses; records XCom pushes."""

    dag_id: str = "dag_x"
    task_id: str = "run_job"
    run_id: str = "manual__1"
    try_number: int = 1
    map_index: int = -1
    stats_tags: dict[str, str] = field(default_factory=dict)
    xcom: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class DictStateStore(dict):
    """Stands in for ``context['task_state_store']`` (get/set by key, shared across tries)."""

    def set(self, key: str, value: Any, **_: Any) -> None:
        self[key] = value


def context(ti: RecordingTI | None = None, store: DictStateStore | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"ti": ti or RecordingTI()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def operator(conn_id: str, **kwargs: Any) -> SpotfireRunAutomationJobOperator:
    kwargs.setdefault("task_id", "run_job")
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("deferrable", False)
    return SpotfireRunAutomationJobOperator(spotfire_conn_id=conn_id, **kwargs)


async def status_reads_failing(emulator: Any, trigger: SpotfireAutomationJobTrigger) -> Any:
    """The trigger's event while every status read answers 503 (more than any retry policy allows)."""
    emulator.inject_faults(*["503"] * 50, path_prefix="/spotfire/api/rest/as/job/status")
    try:
        return await anext(trigger.run())
    finally:
        emulator.http().delete("/_emulator/faults").raise_for_status()  # the retry reads for real


async def run_deferred(op: SpotfireRunAutomationJobOperator, ctx: dict[str, Any]) -> dict[str, Any]:
    """execute() -> TaskDeferred -> trigger.run() -> execute_complete(), as the triggerer would."""
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SpotfireAutomationJobTrigger)
    assert deferred.value.method_name == "execute_complete"
    async for event in trigger.run():
        return getattr(op, deferred.value.method_name)(ctx, event.payload)
    raise AssertionError("the trigger fired no event")


# ---------------------------------------------------------------------------------------------- success


def test_library_path_non_deferrable_returns_final_status_and_pushes_id_and_link(
    spotfire_conn_id, spotfire_emulator
):
    ti = RecordingTI()
    result = operator(spotfire_conn_id, library_path=EXPORT_FINANCE).execute(context(ti))
    assert result["StatusCode"] == "Finished" and result["JobId"] == ti.xcom["job_id"]
    assert as_job(spotfire_emulator, result["JobId"])["status"] == "Finished"
    url = ti.xcom["spotfire_automation_job_url"]
    assert url == f"{spotfire_emulator.url}/spotfire/library#/Airflow/Jobs/Export%20Finance%20Report"


async def test_library_id_deferrable(spotfire_conn_id, spotfire_emulator):
    ti = RecordingTI()
    result = await run_deferred(
        operator(spotfire_conn_id, library_id=EXPORT_FINANCE_ID, deferrable=True), context(ti)
    )
    assert result["StatusCode"] == "Finished"
    assert as_job(spotfire_emulator, ti.xcom["job_id"])["itemId"] == EXPORT_FINANCE_ID
    assert ti.xcom["spotfire_automation_job_url"] == ""  # no browser address for a job started by id


async def test_inline_job_xml_deferrable(spotfire_conn_id, spotfire_emulator):
    ti = RecordingTI()
    result = await run_deferred(
        operator(spotfire_conn_id, job_xml=job_xml(0.2), deferrable=True), context(ti)
    )
    assert result["StatusCode"] == "Finished"
    assert as_job(spotfire_emulator, result["JobId"])["source"]["kind"] == "xml"


def test_wait_for_completion_false_returns_after_the_start(spotfire_conn_id, spotfire_emulator):
    result = operator(spotfire_conn_id, library_path=NIGHTLY_BATCH, wait_for_completion=False).execute(
        context()
    )
    assert result["StatusCode"] in ("Queued", "InProgress")
    assert as_job(spotfire_emulator, result["JobId"])["status"] in ("Queued", "InProgress")


# ---------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("deferrable", [False, True])
@pytest.mark.parametrize(
    ("library_path", "state", "message"),
    [
        (BROKEN_EXPORT, "Failed", "ended Failed: Could not open analysis /Airflow/Reports/Missing"),
        (STATUS_NOT_SET, "NotSet", "reports NotSet"),
    ],
)
async def test_failed_and_notset_fail_the_task_with_the_message(
    spotfire_conn_id, spotfire_emulator, deferrable, library_path, state, message
):
    op = operator(spotfire_conn_id, library_path=library_path, deferrable=deferrable)
    with pytest.raises(SpotfireJobError, match=message) as err:
        if deferrable:
            await run_deferred(op, context())
        else:
            op.execute(context())
    assert err.value.status == state


def _while_running(ti: RecordingTI, action) -> threading.Thread:
    """Run ``action(job_id)`` as soon as the operator has pushed the job id."""

    def watch() -> None:
        for _ in range(200):
            if "job_id" in ti.xcom:
                time.sleep(0.2)
                action(ti.xcom["job_id"])
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("deferrable", [False, True])
@pytest.mark.parametrize("what", ["Canceled", "Missing"])
async def test_canceled_and_missing_fail_the_task(
    hook, spotfire_conn_id, spotfire_emulator, deferrable, what
):
    ti = RecordingTI()
    act = (
        (lambda job_id: hook.abort_automation_job(job_id, "stopped in Spotfire"))
        if what == "Canceled"
        else spotfire_emulator.forget_as_job
    )
    op = operator(spotfire_conn_id, library_path=NIGHTLY_BATCH, deferrable=deferrable)
    thread = _while_running(ti, act)
    with pytest.raises(SpotfireJobError, match=f"ended {what}") as err:
        if deferrable:
            await run_deferred(op, context(ti))
        else:
            op.execute(context(ti))
    thread.join()
    assert err.value.status == what


def test_unknown_library_job_fails_before_anything_runs(spotfire_conn_id, spotfire_emulator):
    with pytest.raises(SpotfireJobError, match=r"did not start .* Job file not found or no access"):
        operator(spotfire_conn_id, library_path="/Airflow/Jobs/Nope").execute(context())
    assert all(job["status"] == "Failed" for job in as_jobs(spotfire_emulator))


def test_exactly_one_source_is_required(spotfire_conn_id):
    with pytest.raises(SpotfireConfigurationError, match="exactly one of library_path"):
        operator(spotfire_conn_id)
    with pytest.raises(SpotfireConfigurationError, match="got library_path, library_id"):
        operator(spotfire_conn_id, library_path="/a", library_id="b")


def test_malformed_job_xml_is_refused_without_contacting_spotfire(spotfire_conn_id, spotfire_emulator):
    with pytest.raises(SpotfireConfigurationError, match="not well-formed XML"):
        operator(spotfire_conn_id, job_xml="<as:Job><broken></as:Job>").execute(context())
    assert not spotfire_emulator.requests_log(path_prefix="/spotfire/api/")


# ---------------------------------------------------------------------------------------------- Busy


def test_busy_start_is_retried_with_backoff(hook, spotfire_conn_id, spotfire_emulator):
    spotfire_emulator.set_config(as_max_concurrent_jobs=1)
    hook.start_automation_job_from_xml(job_xml(duration=0.3))
    op = operator(spotfire_conn_id, library_path=EXPORT_FINANCE, busy_retry=BusyRetry(initial_delay=0.2))
    assert op.execute(context())["StatusCode"] == "Finished"
    assert spotfire_emulator.inspect()["counters"]["as_busy"] >= 1


def test_busy_bound_exhausted_fails_clearly_and_starts_nothing(spotfire_conn_id, spotfire_emulator):
    spotfire_emulator.set_config(as_max_concurrent_jobs=0)
    retry = BusyRetry(max_attempts=2, initial_delay=0.01)
    with pytest.raises(SpotfireAutomationBusyError, match="answered Busy to 2 starts"):
        operator(spotfire_conn_id, library_path=EXPORT_FINANCE, busy_retry=retry).execute(context())
    assert as_starts(spotfire_emulator) == 0


# ---------------------------------------------------------------------------------------------- stopping


def test_on_kill_aborts_the_job_with_a_reason_naming_the_task(spotfire_conn_id, spotfire_emulator):
    ti = RecordingTI(dag_id="sales", task_id="export", run_id="scheduled__2025", try_number=2)
    op = operator(spotfire_conn_id, library_path=NIGHTLY_BATCH)
    thread = _while_running(ti, lambda _job_id: op.on_kill())  # what Airflow calls on SIGTERM / timeout
    with pytest.raises(SpotfireJobError, match="ended Canceled"):
        op.execute(context(ti))
    thread.join()
    record = as_job(spotfire_emulator, ti.xcom["job_id"])
    assert record["status"] == "Canceled"
    assert record["abortReason"] == (
        "Airflow task sales.export (run scheduled__2025, try 2) was killed "
        "(timeout, marked failed or cleared)"
    )


def test_on_kill_with_abort_on_kill_false_leaves_the_job(spotfire_conn_id, spotfire_emulator):
    ti = RecordingTI()
    op = operator(
        spotfire_conn_id, library_path=NIGHTLY_BATCH, wait_for_completion=False, abort_on_kill=False
    )
    op.execute(context(ti))
    op.on_kill()
    assert as_job(spotfire_emulator, ti.xcom["job_id"])["abortedAt"] is None


async def test_deferrable_execution_timeout_aborts_the_job(spotfire_conn_id, spotfire_emulator):
    ti = RecordingTI()
    op = operator(
        spotfire_conn_id,
        library_path=NIGHTLY_BATCH,
        deferrable=True,
        execution_timeout=timedelta(seconds=0.5),
    )
    with pytest.raises(SpotfireTimeoutError, match="the job was aborted"):
        await run_deferred(op, context(ti))
    record = as_job(spotfire_emulator, ti.xcom["job_id"])
    assert record["status"] == "Canceled"
    assert "exceeded its execution_timeout" in record["abortReason"]


async def test_status_failure_on_the_last_try_aborts_the_job(spotfire_conn_id, spotfire_emulator):
    ti = RecordingTI()
    spotfire_emulator.set_config(retry_after=0)
    op = operator(spotfire_conn_id, library_path=NIGHTLY_BATCH, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(ti))
    event = await status_reads_failing(spotfire_emulator, deferred.value.trigger)
    with pytest.raises(SpotfireJobError, match="Could not read the status"):
        op.execute_complete(context(ti), event.payload)
    record = as_job(spotfire_emulator, ti.xcom["job_id"])
    assert record["status"] == "Canceled" and "stopped waiting" in record["abortReason"]


# ---------------------------------------------------------------------------------------------- resuming


@requires_resumable
def test_retry_resumes_the_running_job_instead_of_starting_another(spotfire_conn_id, spotfire_emulator):
    store = DictStateStore()
    xml = job_xml(duration=1.0, queue=0.2)
    first = operator(spotfire_conn_id, job_xml=xml, wait_for_completion=False, retries=1)
    job_id = first.execute(context(RecordingTI(try_number=1), store))["JobId"]
    assert store["spotfire_automation_job_id"] == job_id

    ti2 = RecordingTI(try_number=2)
    result = operator(spotfire_conn_id, job_xml=xml, retries=1).execute(context(ti2, store))
    assert result == {"JobId": job_id, "StatusCode": "Finished", "Message": "The job finished successfully."}
    assert ti2.xcom["job_id"] == job_id
    assert as_starts(spotfire_emulator) == 1


def test_retry_after_a_failed_job_starts_a_fresh_one(spotfire_conn_id, spotfire_emulator):
    store = DictStateStore()
    with pytest.raises(SpotfireJobError):
        operator(spotfire_conn_id, library_path=BROKEN_EXPORT, retries=1).execute(
            context(RecordingTI(), store)
        )
    with pytest.raises(SpotfireJobError):
        operator(spotfire_conn_id, library_path=BROKEN_EXPORT, retries=1).execute(
            context(RecordingTI(try_number=2), store)
        )
    assert as_starts(spotfire_emulator) == 2


@requires_resumable
async def test_status_failure_with_retries_left_keeps_the_job_for_the_retry(
    spotfire_conn_id, spotfire_emulator
):
    store = DictStateStore()
    ti = RecordingTI()
    spotfire_emulator.set_config(retry_after=0)
    op = operator(spotfire_conn_id, library_path=NIGHTLY_BATCH, deferrable=True, retries=2)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(ti, store))
    event = await status_reads_failing(spotfire_emulator, deferred.value.trigger)
    with pytest.raises(SpotfireJobError):
        op.execute_complete(context(ti, store), event.payload)
    assert as_job(spotfire_emulator, ti.xcom["job_id"])["status"] in ("Queued", "InProgress")
    # the retry defers on the same job
    with pytest.raises(TaskDeferred) as again:
        operator(spotfire_conn_id, library_path=NIGHTLY_BATCH, deferrable=True, retries=2).execute(
            context(RecordingTI(try_number=2), store)
        )
    assert again.value.trigger.job_id == ti.xcom["job_id"]
    assert as_starts(spotfire_emulator) == 1


async def test_without_resuming_a_status_failure_aborts_the_job_even_with_retries_left(
    spotfire_conn_id, spotfire_emulator
):
    # durable=False (and Airflow < 3.3, whose stand-in mixin cannot resume): the next try starts a
    # new job, so the one this try gives up on must not keep running.
    store = DictStateStore()
    ti = RecordingTI()
    spotfire_emulator.set_config(retry_after=0)
    kwargs = {"library_path": NIGHTLY_BATCH, "deferrable": True, "retries": 2, "durable": False}
    op = operator(spotfire_conn_id, **kwargs)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(ti, store))
    event = await status_reads_failing(spotfire_emulator, deferred.value.trigger)
    with pytest.raises(SpotfireJobError):
        op.execute_complete(context(ti, store), event.payload)
    record = as_job(spotfire_emulator, ti.xcom["job_id"])
    assert record["status"] == "Canceled" and "stopped waiting" in record["abortReason"]
    with pytest.raises(TaskDeferred) as again:
        operator(spotfire_conn_id, **kwargs).execute(context(RecordingTI(try_number=2), store))
    assert again.value.trigger.job_id != ti.xcom["job_id"]
    assert as_starts(spotfire_emulator) == 2


# ---------------------------------------------------------------------------------------------- sensor


def sensor(conn_id: str, job_id: str, **kwargs: Any) -> SpotfireAutomationJobSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("deferrable", False)
    return SpotfireAutomationJobSensor(task_id="wait", job_id=job_id, spotfire_conn_id=conn_id, **kwargs)


@pytest.mark.parametrize("deferrable", [False, True])
async def test_sensor_succeeds_on_finished(hook, spotfire_conn_id, spotfire_emulator, deferrable):
    job_id = hook.start_automation_job_from_library(library_path=EXPORT_FINANCE).job_id
    s = sensor(spotfire_conn_id, job_id, deferrable=deferrable)
    if deferrable:
        with pytest.raises(TaskDeferred) as deferred:
            s.execute(context())
        event = await anext(deferred.value.trigger.run())
        result = s.execute_complete(context(), event.payload)
    else:
        result = s.execute(context())
    assert result["StatusCode"] == "Finished" and result["JobId"] == job_id


@pytest.mark.parametrize("deferrable", [False, True])
async def test_sensor_fails_on_failed_job(hook, spotfire_conn_id, spotfire_emulator, deferrable):
    job_id = hook.start_automation_job_from_library(library_path=BROKEN_EXPORT).job_id
    s = sensor(spotfire_conn_id, job_id, deferrable=deferrable)
    with pytest.raises(SpotfireJobError, match="Could not open analysis"):
        if deferrable:
            try:
                s.execute(context())
            except TaskDeferred as deferred:
                event = await anext(deferred.trigger.run())
                s.execute_complete(context(), event.payload)
        else:
            s.execute(context())


async def test_deferrable_sensor_times_out_without_aborting(hook, spotfire_conn_id, spotfire_emulator):
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    s = sensor(spotfire_conn_id, job_id, deferrable=True, timeout=0.5)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(context())
    assert deferred.value.timeout == timedelta(seconds=300.5)  # a backstop behind the trigger's deadline
    event = await anext(deferred.value.trigger.run())
    with pytest.raises(AirflowSensorTimeout):
        s.execute_complete(context(), event.payload)
    assert as_job(spotfire_emulator, job_id)["abortedAt"] is None


def test_sensor_without_job_id_says_how_to_fix(spotfire_conn_id):
    with pytest.raises(SpotfireConfigurationError, match="XCom key 'job_id'"):
        sensor(spotfire_conn_id, "None").poke(context())


# ---------------------------------------------------------------------------------------------- one vocabulary


@pytest.mark.parametrize(
    ("code", "active", "succeeded"),
    [
        ("Queued", True, False),
        ("InProgress", True, False),
        ("Busy", True, False),  # a job that reports Busy is still there: a retry resumes it, starts none
        ("Finished", False, True),
        ("Failed", False, False),
        ("Canceled", False, False),
        ("Missing", False, False),
        ("NotSet", False, False),
        ("in_progress", True, False),
    ],
)
def test_resume_decisions_follow_the_one_status_table(spotfire_conn_id, code, active, succeeded):
    op = operator(spotfire_conn_id, library_path=EXPORT_FINANCE)
    assert op.is_job_active(code) is active
    assert op.is_job_succeeded(code) is succeeded


def test_operator_and_sensor_build_the_same_final_status_from_an_event(spotfire_conn_id):
    event = {
        "status": "success",
        "job_id": "j-1",
        "job_state": "Finished",
        "message": "done",
        "details": {"status": {"JobId": "j-1", "StatusCode": "Finished", "Message": "All exported."}},
    }
    expected = {"JobId": "j-1", "StatusCode": "Finished", "Message": "All exported."}
    op = operator(spotfire_conn_id, library_path=EXPORT_FINANCE)
    assert op.execute_complete(context(), event) == expected
    sensor = SpotfireAutomationJobSensor(task_id="wait", job_id="j-1", spotfire_conn_id=spotfire_conn_id)
    assert sensor.execute_complete(context(), event) == expected
    bare = {**event, "details": {}}  # an event without the status falls back to its own fields
    assert op.execute_complete(context(), bare) == {"JobId": "j-1", "StatusCode": "Finished", "Message": ""}
