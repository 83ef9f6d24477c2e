"""Per-job counters, the job list endpoints, concurrency limits and per-job durations of the emulator."""

from __future__ import annotations

import itertools
from datetime import datetime

import httpx
import pytest

from airflow_provider_spotfire.emulator.__main__ import build_parser, config_from_args
from airflow_provider_spotfire.emulator.automation_store import AsJob

from .conftest import AS_JOB, UPLOAD, sbdf

LONG_JOB = '<?xml version="1.0"?><?spotfire-emulator queue="1" duration="100"?><as:Job xmlns:as="x"/>'
PLAIN_JOB = '<?xml version="1.0"?><as:Job xmlns:as="x"/>'


@pytest.fixture(autouse=True)
def _frozen_clock(emu):
    emu.freeze_clock()


def start(client: httpx.Client, xml: str = LONG_JOB) -> dict:
    resp = client.post(
        f"{AS_JOB}/start-content", content=xml.encode(), headers={"Content-Type": "application/xml"}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def admin_get(http: httpx.Client, path: str, **params: str) -> httpx.Response:
    return http.get(f"/_emulator{path}", params=params)


def test_as_job_counts_status_polls_and_abort_requests(emu, http, airflow):
    job_id = start(airflow)["JobId"]
    other = start(airflow)["JobId"]
    for _ in range(3):
        assert airflow.get(f"{AS_JOB}/status/{job_id}").status_code == 200
        emu.advance_clock(0.25)
    assert airflow.get(f"{AS_JOB}/status/{other}").status_code == 200
    emu.advance_clock(1.25)
    for _ in range(2):  # the second abort finds the job Canceled already: counted, nothing changes
        assert airflow.post(f"{AS_JOB}/abort/{job_id}", params={"reason": "stop"}).status_code == 200
    assert airflow.get(f"{AS_JOB}/status/00000000-0000-0000-0000-000000000000").status_code == 404

    one = admin_get(http, f"/automation/jobs/{job_id}").json()
    assert (one["status_polls"], one["abort_requests"], one["status"]) == (3, 2, "Canceled")
    times = [datetime.fromisoformat(t) for t in one["status_poll_times"]]
    assert [round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(times)] == [0.25, 0.25]
    rows = {r["id"]: r for r in admin_get(http, "/automation/jobs").json()}
    assert set(rows) == {job_id, other}
    row = rows[job_id]
    assert (row["state"], row["status_polls"], row["abort_requests"]) == ("Canceled", 3, 2)
    assert row["created_at"] < row["started_at"] < row["finished_at"]
    assert rows[other]["state"] == "InProgress"
    assert (rows[other]["status_polls"], rows[other]["abort_requests"]) == (1, 0)
    assert rows[other]["finished_at"] is None
    # the same through the EmulatorServer helpers
    assert [j["id"] for j in emu.as_jobs(state="canceled")] == [job_id]
    assert emu.as_job(job_id)["status_polls"] == 3


def test_as_job_list_state_filter(emu, http, airflow):
    queued = start(airflow)["JobId"]
    emu.advance_clock(1.5)
    running = start(airflow, LONG_JOB.replace('queue="1"', 'queue="0"'))["JobId"]
    done = start(airflow, LONG_JOB.replace('queue="1" duration="100"', 'queue="0" duration="0"'))["JobId"]
    fresh = start(airflow)["JobId"]
    by_state = {
        s: [r["id"] for r in admin_get(http, "/automation/jobs", state=s).json()]
        for s in ("queued", "InProgress", "finished")
    }
    assert by_state == {"queued": [fresh], "InProgress": [queued, running], "finished": [done]}
    row = next(r for r in admin_get(http, "/automation/jobs").json() if r["id"] == fresh)
    assert row["started_at"] is None
    bad = admin_get(http, "/automation/jobs", state="Sleeping")
    assert bad.status_code == 400 and "Queued" in bad.json()["detail"]


def test_concurrency_limit_frees_slots_on_end_abort_and_forget(emu, http, airflow):
    emu.set_config(as_max_concurrent_jobs=3)
    ids = [start(airflow)["JobId"] for _ in range(3)]
    busy = start(airflow)
    assert busy["StatusCode"] == "Busy"
    airflow.post(f"{AS_JOB}/abort/{ids[0]}")
    fourth = start(airflow)["JobId"]
    assert start(airflow)["StatusCode"] == "Busy"
    assert http.post(f"/_emulator/automation/jobs/{ids[1]}/forget").status_code == 200
    fifth = start(airflow)["JobId"]
    assert start(airflow)["StatusCode"] == "Busy"
    emu.advance_clock(101)  # every job ran its 1 + 100 s
    assert start(airflow)["StatusCode"] == "Queued"
    states = {r["id"]: r["state"] for r in admin_get(http, "/automation/jobs").json()}
    assert states[ids[0]] == "Canceled" and states[ids[1]] == "Missing"
    assert states[fourth] == states[fifth] == states[ids[2]] == "Finished"


def test_max_concurrent_jobs_can_be_5000(emu):
    emu.set_config(as_max_concurrent_jobs=5000)
    assert emu.inspect()["config"]["as_max_concurrent_jobs"] == 5000
    args = build_parser().parse_args(["--as-max-concurrent-jobs", "5000"])
    assert config_from_args(args).as_max_concurrent_jobs == 5000


def test_5000_running_jobs_hold_the_limit(emu, http, airflow):
    """5,000 jobs (put in directly: 5,000 HTTP starts would take too long here) fill the limit exactly."""
    emu.set_config(as_max_concurrent_jobs=5000)
    now = emu.state.now()
    for i in range(4999):
        emu.state.automation.add(
            AsJob(f"bulk-{i}", "airflow", "xml", "", now, 0, 10 + i % 50, "Finished", None, 1)
        )
    last = start(airflow)["JobId"]  # the 5,000th
    assert start(airflow)["StatusCode"] == "Busy"
    assert airflow.get(f"{AS_JOB}/status/bulk-4998").json()["StatusCode"] == "InProgress"
    assert len(admin_get(http, "/automation/jobs", state="InProgress").json()) == 4999
    emu.advance_clock(35)  # the jobs of 10-35 s (26 of every 50) are done
    assert start(airflow)["StatusCode"] == "Queued"
    assert len(admin_get(http, "/automation/jobs", state="Finished").json()) == 2600
    assert admin_get(http, f"/automation/jobs/{last}").json()["status"] == "InProgress"


def test_hundred_jobs_of_varying_length_reproducible(emu, http, api, airflow):
    emu.set_config(as_max_concurrent_jobs=200, as_run_seconds_range=[1, 5], as_queue_seconds=0)

    def durations(client: httpx.Client) -> list[float]:
        for _ in range(100):
            start(client, PLAIN_JOB)
        return [r["run_seconds"] for r in admin_get(http, "/automation/jobs").json()]

    first = durations(airflow)
    assert all(1 <= d <= 5 for d in first)
    assert len(set(first)) == 100
    assert min(first) < 2 and max(first) > 4
    emu.advance_clock(3)
    finished = admin_get(http, "/automation/jobs", state="Finished").json()
    running = admin_get(http, "/automation/jobs", state="InProgress").json()
    assert len(finished) + len(running) == 100
    assert {r["id"] for r in finished} == {
        r["id"] for r in admin_get(http, "/automation/jobs").json() if r["run_seconds"] <= 3
    }
    # the job's own duration wins over the range
    own = start(airflow, LONG_JOB)["JobId"]
    assert admin_get(http, f"/automation/jobs/{own}").json()["runSeconds"] == 100
    # same seed after a reset (config kept, tokens gone) -> same durations
    http.post("/_emulator/reset", params={"keep_config": "true"})
    emu.freeze_clock()
    assert durations(api("airflow")) == first


@pytest.mark.parametrize("bad", [[5, 1], [-1, 2], [1]])
def test_run_seconds_range_validated(http, bad):
    resp = http.patch("/_emulator/config", json={"as_run_seconds_range": bad})
    assert resp.status_code == 400
    assert "as_run_seconds_range" in resp.json()["detail"]


def test_upload_job_counts_status_polls_and_cancel_requests(emu, http, airflow):
    def new(title: str) -> str:
        item = {"title": title, "parentPath": "/Airflow/Reports", "type": "spotfire.sbdf"}
        resp = airflow.put(UPLOAD, json={"data": {"item": item}})
        assert resp.status_code == 201, resp.text
        return resp.json()["data"]["getStatusLinkRel"].rsplit("/", 1)[1]

    cancelled, finished = new("a"), new("b")
    for _ in range(2):
        assert airflow.get(f"{UPLOAD}/{cancelled}").status_code == 200
    for _ in range(2):
        assert airflow.delete(f"{UPLOAD}/{cancelled}").status_code == 200
    assert airflow.post(f"{UPLOAD}/{finished}?chunk=1&finish=true", content=sbdf(100)).status_code == 200
    assert airflow.get(f"{UPLOAD}/{finished}").status_code == 200
    assert airflow.delete(f"{UPLOAD}/{finished}").status_code == 400  # finished: refused, still counted

    rows = {r["id"]: r for r in admin_get(http, "/library/jobs").json()}
    assert (
        rows[cancelled]["state"],
        rows[cancelled]["status_polls"],
        rows[cancelled]["cancel_requests"],
    ) == (
        "cancelled",
        2,
        2,
    )
    assert (rows[finished]["state"], rows[finished]["status_polls"], rows[finished]["cancel_requests"]) == (
        "finished",
        1,
        1,
    )
    assert rows[finished]["bytes_received"] == 100 and rows[finished]["finished_at"]
    assert [r["id"] for r in admin_get(http, "/library/jobs", state="cancelled").json()] == [cancelled]
    assert [r["id"] for r in emu.upload_jobs(state="finished")] == [finished]
    one = admin_get(http, f"/library/jobs/{cancelled}").json()
    assert (one["status_polls"], one["cancel_requests"]) == (2, 2)
    assert admin_get(http, "/library/jobs/nope").status_code == 404
    assert admin_get(http, "/library/jobs", state="done").status_code == 400
