"""The connection's ``poll_interval`` extra: the default poll of uploads and the upload sensor (issue 10)."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_spotfire.exceptions import SpotfireConfigurationError
from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.sensors.library import SpotfireUploadJobSensor
from tests.library.conftest import REPORTS, upload_jobs
from tests.library.test_library_trigger_sensor import open_job


def upload(conn_id: str, path: Any, title: str, **kwargs: Any) -> SpotfireUploadSbdfOperator:
    return SpotfireUploadSbdfOperator(
        task_id="upload",
        library_path=f"{REPORTS}/{title}",
        source=str(path),
        spotfire_conn_id=conn_id,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("extra", "argument", "expected"),
    [({"poll_interval": 0.3}, {}, 0.3), ({"poll_interval": 0.3}, {"poll_interval": 4}, 4.0), ({}, {}, 5.0)],
)
def test_deferred_upload_hands_the_resolved_interval_to_the_trigger(
    conn_with_poll, spotfire_emulator, make_sbdf, context, extra, argument, expected
):
    conn_id = conn_with_poll(**extra)
    op = upload(conn_id, make_sbdf(2000), "deferred", deferrable=True, **argument)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert info.value.trigger.serialize()[1]["poll_interval"] == expected
    assert op.poll_interval == expected


def test_blocking_upload_without_poll_interval_waits_at_the_connections_interval(
    conn_with_poll, spotfire_emulator, make_sbdf, context
):
    conn_id = conn_with_poll(poll_interval=0.25)
    op = upload(conn_id, make_sbdf(2000), "blocking", deferrable=False)
    out = op.execute(context)
    assert out["library_path"] == f"{REPORTS}/blocking"
    assert op.upload_options.poll_interval == 0.25


def test_bad_poll_interval_extra_fails_before_any_upload_job(
    conn_with_poll, spotfire_emulator, make_sbdf, context
):
    conn_id = conn_with_poll(poll_interval=-1)
    op = upload(conn_id, make_sbdf(2000), "bad", deferrable=True)
    with pytest.raises(SpotfireConfigurationError, match=r"'spotfire_default': extra poll_interval must be"):
        op.execute(context)
    assert upload_jobs(spotfire_emulator) == []


@pytest.mark.parametrize(
    ("argument", "expected"),
    [({}, 0.3), ({"poke_interval": 4}, 4.0), ({"default_args": {"poke_interval": 6}}, 6.0)],
)
def test_deferred_upload_sensor_uses_the_connections_interval_unless_given(
    hook, conn_with_poll, spotfire_emulator, argument, expected
):
    conn_id = conn_with_poll(poll_interval=0.3)
    job = open_job(hook, "watched")
    sensor = SpotfireUploadJobSensor(
        task_id="wait", job_id=job.job_id, spotfire_conn_id=conn_id, deferrable=True, timeout=30, **argument
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    assert info.value.trigger.serialize()[1]["poll_interval"] == expected
    assert sensor.poke_interval == expected


def test_upload_sensor_without_extra_keeps_its_poke_default(hook, conn_with_poll, spotfire_emulator):
    conn_id = conn_with_poll()
    job = open_job(hook, "watched-default")
    sensor = SpotfireUploadJobSensor(
        task_id="wait", job_id=job.job_id, spotfire_conn_id=conn_id, deferrable=True, timeout=30
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    assert info.value.trigger.serialize()[1]["poll_interval"] == 60.0
    assert sensor.poke_interval == 60.0
