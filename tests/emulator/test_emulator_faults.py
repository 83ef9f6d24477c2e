"""Fault injection of the emulator: seeded 503/429 rates, dropped connections, latency, scripted faults."""

from __future__ import annotations

import time

import httpx
import pytest
import requests

from airflow_provider_spotfire.emulator import seed

from .conftest import AS_JOB, LICENSES, TOKEN_PATH


def statuses(client: httpx.Client, n: int) -> list[int]:
    return [client.get(LICENSES).status_code for _ in range(n)]


@pytest.mark.parametrize(
    ("rate_key", "status", "code"),
    [("rate_503", 503, "server_busy"), ("rate_429", 429, "rate_limit_exceeded")],
)
def test_error_rates_are_statistical_and_reproducible(emu, api, rate_key, status, code):
    client = api("airflow")
    emu.set_config(**{rate_key: 0.25, "retry_after": 3})
    first = statuses(client, 160)
    hits = first.count(status)
    assert 24 <= hits <= 56, hits  # 40 expected
    assert set(first) == {200, status}
    assert emu.inspect()["counters"]["faults_injected"][str(status)] == hits
    resp = next(r for r in (client.get(LICENSES) for _ in range(100)) if r.status_code == status)
    assert resp.headers["retry-after"] == "3"
    assert resp.json()["error"]["code"] == code
    # same seed, same requests -> same faults
    emu.reset()
    client = api("airflow")
    emu.set_config(**{rate_key: 0.25, "retry_after": 3})
    assert statuses(client, 160) == first


def test_dropped_connections_are_connection_errors(emu, api, token_for):
    client = api("airflow")
    token = token_for("airflow")
    emu.set_config(drop_rate=1.0)
    for _ in range(12):
        with pytest.raises(httpx.TransportError):
            client.get(LICENSES)
    for _ in range(4):
        with pytest.raises(requests.ConnectionError):
            requests.get(emu.url + LICENSES, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    faults = emu.inspect()["counters"]["faults_injected"]
    assert faults["drop_before"] + faults["drop_after"] == 16
    assert faults["drop_before"] > 0 and faults["drop_after"] > 0
    log = emu.requests_log(path_prefix=LICENSES)
    assert all(e["status"] is None and e["fault"].startswith("drop") for e in log)
    assert any(e["lost_status"] == 200 for e in log if e["fault"] == "drop_after")


def test_drop_after_processing_still_has_effect(emu, airflow):
    xml = seed.job_xml("/x").encode()
    headers = {"Content-Type": "application/xml"}
    emu.inject_faults("drop_before", path_prefix=f"{AS_JOB}/start-content")
    with pytest.raises(httpx.TransportError):
        airflow.post(f"{AS_JOB}/start-content", content=xml, headers=headers)
    assert emu.inspect()["as_jobs"] == []
    emu.inject_faults("drop_after", path_prefix=f"{AS_JOB}/start-content")
    with pytest.raises(httpx.TransportError):
        airflow.post(f"{AS_JOB}/start-content", content=xml, headers=headers)
    assert len(emu.inspect()["as_jobs"]) == 1  # the job was started, only the answer was lost
    assert airflow.post(f"{AS_JOB}/start-content", content=xml, headers=headers).status_code == 200


def test_scripted_faults_in_order(emu, airflow):
    emu.inject_faults("503", "429", path_prefix=LICENSES)
    assert statuses(airflow, 3) == [503, 429, 200]
    assert emu.inspect()["fault_script"] == []


def test_latency(emu, airflow):
    emu.set_config(latency_ms=150)
    started = time.monotonic()
    assert airflow.get(LICENSES).status_code == 200
    assert time.monotonic() - started >= 0.15
    assert emu.inspect()["counters"]["faults_injected"]["latency"] == 1


def test_token_endpoint_and_admin_only_when_asked(emu, http):
    emu.set_config(rate_503=1.0)
    creds = ("airflow", "airflow-secret")
    assert http.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=creds).status_code == 200
    assert http.get("/_emulator/state").status_code == 200  # admin endpoints are never faulted
    emu.set_config(faults_on_token_endpoint=True)
    resp = http.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=creds)
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"


def test_upload_is_retryable_after_a_dropped_chunk(emu, airflow):
    from .conftest import UPLOAD, sbdf

    content = sbdf(5000)
    job = airflow.put(
        UPLOAD, json={"data": {"item": {"title": "retry", "parentPath": "/Airflow", "type": "spotfire.sbdf"}}}
    ).json()["data"]
    emu.inject_faults("drop_after", path_prefix=job["uploadLinkBaseRel"], method="POST")
    with pytest.raises(httpx.TransportError):
        airflow.post(f"{job['uploadLinkBaseRel']}?chunk=0", content=content)
    # the chunk was stored although the answer was lost; re-sending it replaces it
    resp = airflow.post(f"{job['uploadLinkBaseRel']}?chunk=0&finish=true", content=content)
    assert resp.status_code == 200 and resp.json()["data"]["uploadedChunks"] == [0]


def test_drop_path_prefixes_limit_where_connections_drop(emu, airflow):
    emu.set_config(drop_rate=1.0, drop_path_prefixes=[AS_JOB + "/"])
    assert airflow.get(LICENSES).status_code == 200  # eligible for faults, but not for drops
    with pytest.raises(httpx.TransportError):
        airflow.get(f"{AS_JOB}/status/x")
