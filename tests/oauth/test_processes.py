"""N real processes x M API calls on one refresh-token connection, tokens of a few seconds.

The processes are forked from the test process (as Airflow's supervisor forks task processes),
share nothing but a file-backed store with the Variable store's semantics (whole writes, last
writer wins, no locks), and call the emulator over real HTTP with rotation and reuse detection on (reusing a rotated refresh token revokes the grant). Every call must
succeed, no refresh token may be refused, and the refreshes follow the token lifetime, not the
number of processes.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from airflow_provider_spotfire.oauth import LeaseTimings, TokenManager
from tests.oauth.emulator_login import refresh_token_for_web_client
from tests.oauth.file_store import FileRefreshTokenStore

LIST_LICENSES = ApiRequest("GET", "rest/licenses/v1/", (S.LICENSES_READ,), idempotent=True)
PROCESSES = 6
CALLS = 30
LIFETIME = 3  # seconds; renewed 1 s ahead, so a token serves ~2 s
TIMINGS = LeaseTimings(settle=0.3, poll=0.05, recovery_wait=3.0)


def _admin(server: Any, method: str, path: str, **kwargs: Any) -> Any:
    r = httpx.request(method, f"{server.url}/_emulator/{path}", timeout=10, **kwargs)
    r.raise_for_status()
    return r.json()


def _task_process(conn_id: str, store_dir: str, results: Any) -> None:
    """What one task does: API calls through a hook, sharing tokens through the store."""
    TokenManager.clear_all()  # nothing inherited from the parent's cache
    TokenManager.default_timings = TIMINGS
    hook = SpotfireHook(conn_id, refresh_token_store=FileRefreshTokenStore(store_dir))
    ok, errors = 0, []
    for _ in range(CALLS):
        try:
            hook.call(LIST_LICENSES)
            ok += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)
    results.put((ok, errors[:3], hook.token_manager.token_requests))


@pytest.mark.timeout(180)
def test_parallel_processes_share_one_refresh_per_token_lifetime(
    spotfire_emulator, monkeypatch, tmp_path: Path
):
    _admin(
        spotfire_emulator, "PATCH", "config", json={"token_lifetime": LIFETIME, "rotate_refresh_tokens": True}
    )
    reuse_mode = "refresh_token_reuse_detection" in _admin(spotfire_emulator, "GET", "config")
    if reuse_mode:
        _admin(spotfire_emulator, "PATCH", "config", json={"refresh_token_reuse_detection": True})
    conn_id = "sf_stress"
    original = refresh_token_for_web_client(spotfire_emulator)
    payload = {
        "conn_type": "spotfire",
        "host": spotfire_emulator.url,
        "login": "web-client",
        "password": "web-client-secret",
        "extra": {"grant_type": "refresh_token", "refresh_token": original},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    started = time.monotonic()
    procs = [
        ctx.Process(target=_task_process, args=(conn_id, str(tmp_path), results)) for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=150) for _ in procs]
    for p in procs:
        p.join(10)
    elapsed = time.monotonic() - started

    assert [errors for _, errors, _ in outcomes] == [[]] * PROCESSES
    assert sum(ok for ok, _, _ in outcomes) == PROCESSES * CALLS
    stats = _admin(spotfire_emulator, "GET", "oauth/stats")
    assert stats["reuse_detected"] == 0 and stats["grants_revoked"] == 0
    refreshes = stats["refresh_requests"]
    assert refreshes == sum(n for _, _, n in outcomes)
    # one refresh per ~2 s of run time for all processes together (+ start-up), not per process
    assert 1 <= refreshes <= elapsed / (LIFETIME - 1) + 2, (refreshes, elapsed)
    statuses = [
        e["status"] for e in _admin(spotfire_emulator, "GET", "requests") if e["path"].endswith("/token")
    ]
    assert 400 not in statuses  # no refresh token was ever refused
    stored = json.loads((tmp_path / f"{conn_id}.json").read_text())
    assert stored["refresh_token"] != original
