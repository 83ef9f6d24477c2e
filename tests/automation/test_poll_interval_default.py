"""The connection's ``poll_interval`` extra: the default poll of AS operators and sensors (issue 10).

Observed over HTTP against the emulator: the trigger's kwargs after ``TaskDeferred``, and the gaps
between the status polls the emulator recorded (``status_poll_times``).
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_spotfire.exceptions import SpotfireConfigurationError
from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
from airflow_provider_spotfire.sensors.automation import SpotfireAutomationJobSensor
from airflow_provider_spotfire.triggers.schedule import PollSchedule
from tests.automation.conftest import EXPORT_FINANCE, NIGHTLY_BATCH, as_job, as_starts
from tests.automation.test_operator import context


def operator(conn_id: str, **kwargs: Any) -> SpotfireRunAutomationJobOperator:
    kwargs.setdefault("task_id", "run_job")
    return SpotfireRunAutomationJobOperator(spotfire_conn_id=conn_id, library_path=EXPORT_FINANCE, **kwargs)


def deferred_poll_kwarg(task: Any) -> Any:
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context())
    return deferred.value.trigger.serialize()[1]["poll_interval"]


def poll_gaps(emulator: Any, job_id: str) -> list[float]:
    times = [datetime.fromisoformat(t) for t in as_job(emulator, job_id)["status_poll_times"]]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize(
    ("extra", "argument", "expected"),
    [
        ({"poll_interval": "0.3"}, None, 0.3),  # not given: the connection's
        ({"poll_interval": 0.3}, 2.5, 2.5),  # an explicit argument wins
        ({}, None, 15.0),  # neither: today's default
        (
            {"poll_interval": 0.3},
            PollSchedule.adaptive(1, max_interval=60),
            PollSchedule.adaptive(1, max_interval=60).to_dict(),
        ),
    ],
)
def test_deferred_operator_hands_the_resolved_interval_to_the_trigger(
    conn_with_poll, spotfire_emulator, extra, argument, expected
):
    conn_id = conn_with_poll(**extra)
    kwargs = {} if argument is None else {"poll_interval": argument}
    task = operator(conn_id, deferrable=True, **kwargs)
    assert deferred_poll_kwarg(task) == expected
    if not isinstance(argument, PollSchedule):
        assert task.poll_interval == expected


def test_blocking_operator_without_poll_interval_polls_at_the_connections_interval(
    conn_with_poll, spotfire_emulator
):
    conn_id = conn_with_poll(poll_interval=0.2)
    started = time.monotonic()
    result = operator(conn_id, deferrable=False).execute(context())
    elapsed = time.monotonic() - started
    assert result["StatusCode"] == "Finished"
    gaps = poll_gaps(spotfire_emulator, result["JobId"])
    assert gaps and all(0.1 < gap < 1.0 for gap in gaps), gaps  # every ~0.2 s, not 15 s
    assert elapsed < 5, elapsed


def test_explicit_poll_interval_wins_over_the_connections(conn_with_poll, spotfire_emulator):
    conn_id = conn_with_poll(poll_interval=30)  # would make the test wait 30 s if it were used
    result = operator(conn_id, deferrable=False, poll_interval=0.1).execute(context())
    assert result["StatusCode"] == "Finished"
    assert all(gap < 1.0 for gap in poll_gaps(spotfire_emulator, result["JobId"]))


def test_bad_poll_interval_extra_fails_before_the_job_starts(conn_with_poll, spotfire_emulator):
    conn_id = conn_with_poll(poll_interval="nan")
    task = operator(conn_id, deferrable=False)  # the DAG still parses: the extra is read at execute
    with pytest.raises(SpotfireConfigurationError, match=r"'spotfire_default': extra poll_interval must be"):
        task.execute(context())
    assert as_starts(spotfire_emulator) == 0


def sensor(conn_id: str, job_id: str, **kwargs: Any) -> SpotfireAutomationJobSensor:
    kwargs.setdefault("timeout", 30)
    return SpotfireAutomationJobSensor(task_id="wait", job_id=job_id, spotfire_conn_id=conn_id, **kwargs)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ({}, 0.3),
        ({"poke_interval": 4}, 4.0),
        ({"default_args": {"poke_interval": 6}}, 6.0),
        ({"poll_schedule": PollSchedule(2)}, 2.0),
    ],
)
def test_deferred_sensor_uses_the_connections_interval_unless_given(
    hook, conn_with_poll, spotfire_emulator, argument, expected
):
    conn_id = conn_with_poll(poll_interval=0.3)
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    assert deferred_poll_kwarg(sensor(conn_id, job_id, deferrable=True, **argument)) == expected


def test_sensor_without_extra_keeps_its_poke_default(hook, conn_with_poll, spotfire_emulator):
    conn_id = conn_with_poll()
    job_id = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH).job_id
    assert deferred_poll_kwarg(sensor(conn_id, job_id, deferrable=True)) == 30.0


def test_poking_sensor_without_poke_interval_pokes_at_the_connections_interval(
    hook, conn_with_poll, spotfire_emulator
):
    conn_id = conn_with_poll(poll_interval=0.2)
    job_id = hook.start_automation_job_from_library(library_path=EXPORT_FINANCE).job_id
    task = sensor(conn_id, job_id, deferrable=False)
    started = time.monotonic()
    assert task.execute(context())["StatusCode"] == "Finished"
    assert task.poke_interval == 0.2
    assert time.monotonic() - started < 5
