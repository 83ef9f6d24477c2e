"""One refresh-token connection shared by 8 parallel tasks and 2 deferred jobs, 3 DAG runs at once.

A real Airflow (api-server, scheduler with LocalExecutor and parallelism 8, dag-processor,
triggerer) runs ``refresh_token_dags/spotfire_refresh_tokens.py``. The connection is created in
the metadata DB as ``airflow-spotfire login`` leaves it; the emulator rotates refresh tokens,
revokes the whole grant when a rotated one is used again (RFC 9700 reuse detection) and issues
access tokens of a few seconds, so refreshes collide unless the processes coordinate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fullstack.stack import FullStack, wait_for

pytestmark = [pytest.mark.fullstack, pytest.mark.timeout(1200)]

DAG_ID = "spotfire_refresh_tokens"
CONN_ID = "spotfire_user"
LIFETIME = 4  # seconds; renewed 1 s before expiry
RUNS = 3
START_TIMEOUT = 300.0  # four Airflow processes on a loaded 2-core machine
RUN_TIMEOUT = float(os.environ.get("SPOTFIRE_FULLSTACK_RUN_TIMEOUT", "150")) * 2
SCOPES = "api.licenses.read api.rest.automation-services-job.execute offline"


def _sign_in(emulator_url: str) -> str:
    """The refresh token of a browser sign-in as the emulator's auto-approved user."""
    clients = httpx.get(f"{emulator_url}/_emulator/clients", timeout=10).json()
    redirect = next(c for c in clients if c["client_id"] == "web-client")["redirect_uris"][0]
    r = httpx.get(
        f"{emulator_url}/spotfire/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": "web-client",
            "redirect_uri": redirect,
            "scope": SCOPES,
        },
        timeout=10,
    )
    code = httpx.URL(r.headers["location"]).params["code"]
    t = httpx.post(
        f"{emulator_url}/spotfire/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=("web-client", "web-client-secret"),
        timeout=10,
    )
    t.raise_for_status()
    return str(t.json()["refresh_token"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    stack = FullStack(
        tmp_path_factory.mktemp("airflow-home-refresh"),
        parallelism=8,
        dags_source=Path(__file__).with_name("refresh_token_dags"),
    )
    try:
        stack.start(timeout=START_TIMEOUT)
        yield stack
    finally:
        report = stack.stop()
        assert not (report.killed or report.survivors), report


@pytest.fixture(scope="module")
def outcome(stack: FullStack) -> dict[str, Any]:
    settings = {
        "token_lifetime": LIFETIME,
        "rotate_refresh_tokens": True,
        "refresh_token_reuse_detection": True,
    }
    httpx.patch(f"{stack.emulator_url}/_emulator/config", json=settings, timeout=10).raise_for_status()
    refresh_token = _sign_in(stack.emulator_url)
    conn = {
        "connection_id": CONN_ID,
        "conn_type": "spotfire",
        "host": stack.emulator_url,
        "login": "web-client",
        "password": "web-client-secret",
        "extra": json.dumps({"grant_type": "refresh_token", "refresh_token": refresh_token}),
    }
    stack.request("POST", "/api/v2/connections", json=conn).raise_for_status()
    runs = [stack.trigger(DAG_ID) for _ in range(RUNS)]

    def finished() -> bool:
        states = [stack.get(stack.run_path(DAG_ID, r))["state"] for r in runs]
        return all(s in ("success", "failed") for s in states)

    wait_for(f"{RUNS} runs of {DAG_ID}", finished, timeout=RUN_TIMEOUT, interval=2)
    tis = [ti for r in runs for ti in stack.task_instances(DAG_ID, r)]
    task_logs = {
        str(p): p.read_text(errors="replace") for p in (stack.home / "logs").rglob("*.log*") if p.is_file()
    }
    return {
        "task_logs": task_logs,
        "runs": runs,
        "tis": tis,
        "stats": stack.emulator("/_emulator/oauth/stats"),
        "refresh_token": refresh_token,
        "variable": stack.request("GET", f"/api/v2/variables/spotfire_refresh_token__{CONN_ID}"),
    }


def _window(tis: list[dict[str, Any]]) -> float:
    """Seconds from the first task start to the last task end."""
    starts = [datetime.fromisoformat(ti["start_date"]) for ti in tis if ti["start_date"]]
    ends = [datetime.fromisoformat(ti["end_date"]) for ti in tis if ti["end_date"]]
    return (max(ends) - min(starts)).total_seconds()


def test_every_task_of_every_run_succeeds(outcome: dict[str, Any], stack: FullStack) -> None:
    tis = outcome["tis"]
    assert len(tis) == RUNS * 10
    failed = [f"{ti['task_id']}[{ti['map_index']}] {ti['state']}" for ti in tis if ti["state"] != "success"]
    assert not failed, f"{failed}\n{stack.all_tails()}"


def test_no_refresh_token_was_reused_and_the_grant_is_alive(
    outcome: dict[str, Any], stack: FullStack
) -> None:
    stats = outcome["stats"]
    assert stats["reuse_detected"] == 0 and stats["grants_revoked"] == 0, stats
    assert stats["refresh_requests"] >= 1


def test_refreshes_follow_the_token_lifetime_not_the_number_of_tasks(outcome: dict[str, Any]) -> None:
    window = _window(outcome["tis"])
    refreshes = outcome["stats"]["refresh_requests"]
    per_lifetime = window / (LIFETIME - 1)  # one refresh per usable token lifetime for the deployment
    print(f"\n{refreshes} refreshes in {window:.0f} s of task time ({per_lifetime:.0f} token lifetimes)")
    assert refreshes <= per_lifetime * 1.5 + 3, (refreshes, window)


def test_tasks_and_the_triggerer_shared_the_store_and_never_logged_a_token(
    outcome: dict[str, Any], stack: FullStack
) -> None:
    logs = {
        **outcome["task_logs"],
        "triggerer": stack.log_text("triggerer"),
        "worker": stack.log_text("scheduler"),
    }
    trigger_logs = [name for name in logs if ".trigger." in name]
    assert trigger_logs  # the deferred jobs' trigger logs are there to be checked
    for name, text in logs.items():
        assert "Could not read the shared Spotfire tokens" not in text, name  # no process fell back
        assert "Could not write the shared Spotfire tokens" not in text, name
        assert outcome["refresh_token"] not in text, name
    issued = httpx.get(f"{stack.emulator_url}/_emulator/fullstack/issued-tokens", timeout=10).json()
    values = [t["value"] for t in issued if t["client_id"] == "web-client"]
    assert len(values) > 2
    for name, text in logs.items():
        assert not [v for v in values if v in text], name


def test_the_shared_tokens_are_masked_in_the_api(outcome: dict[str, Any]) -> None:
    response = outcome["variable"]
    assert response.status_code == 200
    text = response.json()["value"]
    stored = json.loads(text)  # the REST API shows the record with every secret redacted
    assert stored["access_token"] == "***" and stored["refresh_token"] == "***", text
    assert outcome["refresh_token"] not in text
