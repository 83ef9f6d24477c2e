"""Automation Services API v1 of the emulator."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_spotfire.emulator import seed

from .conftest import AS_JOB

NOT_FOUND = "Job file not found or no access."


@pytest.fixture(autouse=True)
def _frozen_clock(emu):
    """Job progress follows only advance_clock(): no dependence on real time (or machine load)."""
    emu.freeze_clock()


def start_library(client: httpx.Client, **params: str) -> dict:
    resp = client.post(f"{AS_JOB}/start-library", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def start_xml(client: httpx.Client, xml: str, **headers: str) -> httpx.Response:
    return client.post(
        f"{AS_JOB}/start-content",
        content=xml.encode(),
        headers={"Content-Type": "application/xml", **headers},
    )


def status(client: httpx.Client, job_id: str) -> dict:
    resp = client.get(f"{AS_JOB}/status/{job_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_library_job_lifecycle(emu, airflow):
    started = start_library(airflow, path="/Airflow/Jobs/Refresh Sales Dashboard")
    assert set(started) == {"JobId", "StatusCode", "Message"}
    assert started["StatusCode"] == "Queued"
    job_id = started["JobId"]
    emu.advance_clock(0.31)
    assert status(airflow, job_id)["StatusCode"] == "InProgress"
    emu.advance_clock(1.5)
    final = status(airflow, job_id)
    assert final["StatusCode"] == "Finished" and final["JobId"] == job_id
    job = emu.inspect()["as_jobs"][0]
    assert [h["status"] for h in job["history"]] == ["Queued", "InProgress", "Finished"]
    assert job["source"] == {
        "kind": "library-path",
        "value": "/Airflow/Jobs/Refresh Sales Dashboard",
        "path": None,
    }
    assert job["starts"] == 1
    again = start_library(airflow, id=seed.JOB_REFRESH_SALES)
    state = emu.inspect()
    assert next(j for j in state["as_jobs"] if j["jobId"] == again["JobId"])["starts"] == 2
    assert state["counters"]["as_starts"] == 2


def test_library_job_failure_outcome_and_message(emu, airflow):
    job_id = start_library(airflow, id=seed.JOB_BROKEN_EXPORT)["JobId"]
    emu.advance_clock(1)
    final = status(airflow, job_id)
    assert final["StatusCode"] == "Failed"
    assert "does not exist" in final["Message"]
    job_id = start_library(airflow, path="/Airflow/Jobs/Status Not Set")["JobId"]
    emu.advance_clock(1)
    assert status(airflow, job_id)["StatusCode"] == "NotSet"


@pytest.mark.parametrize(
    "params",
    [
        {"path": "/Airflow/Jobs/No Such Job"},
        {"id": "00000000-0000-0000-0000-000000000000"},
        {"path": "/Restricted/Finance/Quarter Close"},  # exists, but airflow has no read access
        {"path": "/Airflow/Reports/Existing Data"},  # not an AS job
    ],
)
def test_unknown_or_inaccessible_job_is_200_failed(emu, airflow, params):
    resp = start_library(airflow, **params)
    assert resp["StatusCode"] == "Failed" and resp["Message"] == NOT_FOUND
    assert status(airflow, resp["JobId"])["StatusCode"] == "Failed"


def test_start_library_requires_path_or_id(airflow):
    resp = airflow.post(f"{AS_JOB}/start-library")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_request"


def test_start_content_with_emulator_processing_instruction(emu, airflow):
    xml = seed.job_xml("/x", 'queue="0" duration="5" outcome="Failed" message="Disk full"')
    resp = start_xml(airflow, xml)
    assert resp.status_code == 200, resp.text
    job_id = resp.json()["JobId"]
    assert resp.json()["StatusCode"] == "InProgress"  # queue="0"
    emu.advance_clock(4.9)
    assert status(airflow, job_id)["StatusCode"] == "InProgress"
    emu.advance_clock(0.2)
    assert status(airflow, job_id) == {"JobId": job_id, "StatusCode": "Failed", "Message": "Disk full"}
    job = emu.inspect()["as_jobs"][0]
    assert job["source"]["kind"] == "xml" and "<as:Job" in job["source"]["value"]


@pytest.mark.parametrize(
    ("body", "ctype", "status_code"),
    [
        ("<as:Job><unclosed></as:Job>", "application/xml", 400),
        ("", "application/xml", 400),
        ('<?spotfire-emulator outcome="Exploded"?><Job/>', "application/xml", 400),
        ("<Job/>", "application/json", 415),
    ],
)
def test_start_content_rejects_bad_xml(airflow, body, ctype, status_code):
    resp = airflow.post(f"{AS_JOB}/start-content", content=body.encode(), headers={"Content-Type": ctype})
    assert resp.status_code == status_code, resp.text


def test_abort(emu, airflow):
    job_id = start_library(airflow, id=seed.JOB_NIGHTLY_BATCH)["JobId"]
    emu.advance_clock(2)
    assert status(airflow, job_id)["StatusCode"] == "InProgress"
    resp = airflow.post(f"{AS_JOB}/abort/{job_id}", params={"reason": "maintenance window"})
    assert resp.status_code == 200
    assert resp.json()["StatusCode"] == "Canceled" and "maintenance window" in resp.json()["Message"]
    emu.advance_clock(3000)  # still within the token lifetime
    assert status(airflow, job_id)["StatusCode"] == "Canceled"
    job = emu.inspect()["as_jobs"][0]
    assert job["abortReason"] == "maintenance window" and job["abortedAt"]
    assert [h["status"] for h in job["history"]] == ["Queued", "InProgress", "Canceled"]
    unknown = airflow.post(f"{AS_JOB}/abort/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404 and unknown.content == b""
    assert airflow.get(f"{AS_JOB}/status/nope").status_code == 404


def test_busy_when_saturated(emu, airflow):
    emu.set_config(as_max_concurrent_jobs=2)
    first = start_library(airflow, id=seed.JOB_NIGHTLY_BATCH)
    start_library(airflow, id=seed.JOB_NIGHTLY_BATCH)
    busy = start_library(airflow, id=seed.JOB_NIGHTLY_BATCH)
    assert busy["StatusCode"] == "Busy"
    assert airflow.get(f"{AS_JOB}/status/{busy['JobId']}").status_code == 404  # no job was created
    state = emu.inspect()
    assert len(state["as_jobs"]) == 2 and state["counters"]["as_busy"] == 1
    airflow.post(f"{AS_JOB}/abort/{first['JobId']}")
    assert start_library(airflow, id=seed.JOB_NIGHTLY_BATCH)["StatusCode"] == "Queued"


def test_missing_after_forget(emu, airflow):
    job_id = start_library(airflow, path="/Airflow/Jobs/Export Finance Report")["JobId"]
    emu.forget_as_job(job_id)
    assert status(airflow, job_id)["StatusCode"] == "Missing"


@pytest.mark.parametrize(
    ("casing", "keys"),
    [("camel", {"jobId", "statusCode", "message"}), ("lower", {"jobid", "statuscode", "message"})],
)
def test_field_casing_and_extra_fields(emu, airflow, casing, keys):
    emu.set_config(as_field_casing=casing)
    assert set(start_library(airflow, id=seed.JOB_REFRESH_SALES)) == keys
    emu.set_config(extra_response_fields=True)
    assert set(start_library(airflow, id=seed.JOB_REFRESH_SALES)) > keys


def test_automation_only_client_and_admin_items(emu, api, http):
    client = api("automation-only")
    resp = http.post(
        "/_emulator/library/items",
        json={"path": "/Airflow/Jobs/Custom", "emulator": {"queue": 0, "duration": 0, "outcome": "Finished"}},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["emulatorBehaviour"] == {"queue": 0.0, "duration": 0.0, "outcome": "Finished"}
    assert start_library(client, path="/Airflow/Jobs/Custom")["StatusCode"] == "Finished"
    assert client.get("/spotfire/api/rest/licenses/v1").status_code == 403
