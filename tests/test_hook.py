"""SpotfireHook / SpotfireAsyncHook over real HTTP against the emulator: OAuth2, caching, retries, errors."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from datetime import datetime

import httpx
import pytest

from airflow_provider_spotfire._http import HttpResponse, RetryPolicy, raise_for_response
from airflow_provider_spotfire._tokens import TokenManager
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireAuthenticationError,
    SpotfireBadRequestError,
    SpotfireConflictError,
    SpotfireError,
    SpotfireLimitExceededError,
    SpotfireNotFoundError,
    SpotfirePermissionError,
    SpotfireServerError,
    SpotfireTransportError,
    SpotfireUnsupportedMediaTypeError,
)
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook, SpotfireHook
from tests.oauth.emulator_login import refresh_token_for_web_client
from tests.oauth.fakes import FakeClock, MemoryStore

LIST_LICENSES = ApiRequest("GET", "rest/licenses/v1/", (S.LICENSES_READ, S.LICENSES_WRITE), idempotent=True)
FAST_RETRIES = RetryPolicy(max_attempts=4, initial_backoff=0.05, max_backoff=0.2)


def admin(server, method: str, path: str, **kwargs):
    r = httpx.request(method, f"{server.url}/_emulator/{path}", timeout=10, **kwargs)
    r.raise_for_status()
    return r.json()


def token_requests(server, client_id: str) -> int:
    return admin(server, "GET", "state")["counters"]["token_requests"].get(client_id, 0)


def api_log(server, path_part: str = "/spotfire/api/") -> list[dict]:
    return [e for e in admin(server, "GET", "requests") if path_part in e["path"]]


@pytest.fixture
def connect(spotfire_emulator, monkeypatch):
    """Create an env-var connection to the emulator for a client; returns the conn id."""

    def _connect(client_id: str = "airflow", secret: str | None = "airflow-secret", **extra) -> str:
        conn_id = f"sf_{client_id.replace('-', '_')}_{len(extra)}"
        payload = {"conn_type": "spotfire", "host": spotfire_emulator.url, "login": client_id}
        if secret is not None:
            payload["password"] = secret
        if extra:
            payload["extra"] = extra
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
        return conn_id

    return _connect


class EmulatorAndTokenClock(FakeClock):
    """The TokenManager's injected clock; advancing it also advances the emulator's frozen clock."""

    def __init__(self, server) -> None:
        super().__init__()
        self.server = server

    def advance(self, seconds: float) -> None:
        self.now += seconds
        admin(self.server, "POST", "clock/advance", json={"seconds": seconds})


@pytest.fixture
def token_clock(spotfire_emulator, monkeypatch):
    admin(spotfire_emulator, "POST", "clock/freeze", json={"frozen": True})
    clock = EmulatorAndTokenClock(spotfire_emulator)
    monkeypatch.setattr(TokenManager, "default_clock", clock)
    return clock


# ---- authentication ------------------------------------------------------------------------------


def test_client_secret_basic_is_the_default(spotfire_emulator, connect):
    licenses = SpotfireHook(connect()).call(LIST_LICENSES)
    assert isinstance(licenses, list) and licenses
    token_calls = [
        e for e in admin(spotfire_emulator, "GET", "requests") if e["path"].endswith("/oauth2/token")
    ]
    assert token_calls[-1]["auth_scheme"] == "Basic"


def test_client_secret_post_sends_credentials_in_the_body(spotfire_emulator, connect):
    hook = SpotfireHook(connect("post-auth", "post-auth-secret", client_auth_method="client_secret_post"))
    assert hook.call(LIST_LICENSES)
    token_calls = [
        e for e in admin(spotfire_emulator, "GET", "requests") if e["path"].endswith("/oauth2/token")
    ]
    assert token_calls[-1]["auth_scheme"] is None
    # The same client with Basic is refused: the method really is what the server checks.
    with pytest.raises(SpotfireAuthenticationError, match="invalid_client"):
        SpotfireHook(connect("post-auth", "post-auth-secret")).call(LIST_LICENSES)


def test_bad_secret_is_an_authentication_error_that_says_what_to_check(connect):
    with pytest.raises(SpotfireAuthenticationError) as info:
        SpotfireHook(connect("airflow", "wrong")).call(LIST_LICENSES)
    assert info.value.status_code == 401 and info.value.code == "invalid_client"
    assert "client id (Login) and client secret (Password)" in str(info.value)
    assert "wrong" not in str(info.value)


def test_token_endpoint_from_metadata_and_fallback(spotfire_emulator, connect):
    SpotfireHook(connect()).call(LIST_LICENSES)
    paths = [e["path"] for e in admin(spotfire_emulator, "GET", "requests")]
    assert paths[:2] == ["/spotfire/.well-known/oauth-authorization-server", "/spotfire/oauth2/token"]

    TokenManager.clear_all()
    admin(spotfire_emulator, "PATCH", "config", json={"metadata_enabled": False})
    admin(spotfire_emulator, "DELETE", "requests")
    SpotfireHook(connect()).call(LIST_LICENSES)
    log = admin(spotfire_emulator, "GET", "requests")
    assert log[0]["status"] == 404 and log[1]["path"] == "/spotfire/oauth2/token" and log[1]["status"] == 200


# ---- scopes --------------------------------------------------------------------------------------


def test_each_call_asks_for_exactly_its_scope_and_one_api_clients_work(spotfire_emulator, connect):
    hook = SpotfireHook(connect("library-only", "library-only-secret"))
    status = ApiRequest("GET", "rest/library/v1/upload/no-such-job", (S.LIBRARY_UPLOAD,), idempotent=True)
    with pytest.raises(SpotfireNotFoundError) as info:  # authorised: the job simply does not exist
        hook.call(status)
    assert info.value.code == "job_unknown"
    entry = api_log(spotfire_emulator, "/upload/no-such-job")[-1]
    assert entry["scopes"] == [S.LIBRARY_UPLOAD]

    with pytest.raises(SpotfirePermissionError) as refused:
        hook.call(LIST_LICENSES)
    message = str(refused.value)
    assert "library-only" in message and S.LICENSES_WRITE in message and "register" in message


def test_read_scope_preferred_write_scope_accepted_for_license_reads(spotfire_emulator, connect):
    admin(
        spotfire_emulator,
        "POST",
        "clients",
        json={
            "client_id": "writer-only",
            "client_secret": "w",
            "scopes": [S.LICENSES_WRITE],
            "groups": ["Administrator"],
        },
    )
    assert SpotfireHook(connect("writer-only", "w")).call(LIST_LICENSES)
    assert api_log(spotfire_emulator, "/licenses/v1/")[-1]["scopes"] == [S.LICENSES_WRITE]
    assert SpotfireHook(connect()).call(LIST_LICENSES)
    assert api_log(spotfire_emulator, "/licenses/v1/")[-1]["scopes"] == [S.LICENSES_READ]


def test_scopes_override_from_the_connection(spotfire_emulator, connect):
    both = f"{S.LICENSES_READ} {S.AUTOMATION_EXECUTE}"
    hook = SpotfireHook(connect(scopes=both))
    hook.call(LIST_LICENSES)
    assert sorted(api_log(spotfire_emulator, "/licenses/v1/")[-1]["scopes"]) == sorted(both.split())


# ---- token cache and lifetime --------------------------------------------------------------------


def test_one_token_request_for_one_hundred_calls(spotfire_emulator, connect):
    conn_id = connect()
    for _ in range(50):
        SpotfireHook(conn_id).call(LIST_LICENSES)  # new hook objects share the process-wide cache
    hook = SpotfireHook(conn_id)
    for _ in range(50):
        hook.call(LIST_LICENSES)
    assert token_requests(spotfire_emulator, "airflow") == 1
    assert len(api_log(spotfire_emulator, "/licenses/v1/")) == 100


def test_calls_across_several_token_expiries_all_succeed_without_a_401(
    spotfire_emulator, connect, token_clock
):
    admin(spotfire_emulator, "PATCH", "config", json={"token_lifetime": 10})
    hook = SpotfireHook(connect())
    for _ in range(60):  # 60 calls 0.5 s apart (virtual): 30 s, three token lifetimes
        hook.call(LIST_LICENSES)
        token_clock.advance(0.5)
    statuses = [e["status"] for e in api_log(spotfire_emulator, "/licenses/v1/")]
    assert statuses == [200] * 60
    # renewed 1 s (10%) ahead of each expiry: a new token every 9 s
    assert token_requests(spotfire_emulator, "airflow") == 4
    assert token_clock.slept == []  # nothing waited on the wall clock


def test_a_401_renews_the_token_once_and_retries(spotfire_emulator, connect):
    hook = SpotfireHook(connect())
    hook.call(LIST_LICENSES)
    old = hook.get_token((S.LICENSES_READ,)).access_token
    httpx.post(  # revoke the access token behind the hook's back (RFC 7009)
        f"{spotfire_emulator.url}/spotfire/oauth2/revoke",
        data={"token": old, "token_type_hint": "access_token"},
        auth=("airflow", "airflow-secret"),
    ).raise_for_status()
    assert hook.call(LIST_LICENSES)
    assert [e["status"] for e in api_log(spotfire_emulator, "/licenses/v1/")] == [200, 401, 200]
    assert token_requests(spotfire_emulator, "airflow") == 2
    assert hook.get_token((S.LICENSES_READ,)).access_token != old


def test_a_401_after_renewal_is_raised_not_looped(spotfire_emulator, connect):
    admin(spotfire_emulator, "PATCH", "config", json={"token_lifetime": 0})  # every token is dead on arrival
    with pytest.raises(SpotfireAuthenticationError) as info:
        SpotfireHook(connect()).call(LIST_LICENSES)
    assert info.value.status_code == 401
    assert [e["status"] for e in api_log(spotfire_emulator, "/licenses/v1/")] == [401, 401]


# ---- retries -------------------------------------------------------------------------------------


def test_503_with_retry_after_is_waited_out(spotfire_emulator, connect):
    admin(spotfire_emulator, "PATCH", "config", json={"retry_after": 1})
    admin(
        spotfire_emulator, "POST", "faults", json={"faults": ["503", "429"], "path_prefix": "/spotfire/api/"}
    )
    hook = SpotfireHook(connect(), retry_policy=FAST_RETRIES)
    assert hook.call(LIST_LICENSES)
    log = api_log(spotfire_emulator, "/licenses/v1/")
    assert [e["status"] for e in log] == [503, 429, 200]
    times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in log]
    # Our backoff alone would be <= 0.2 s: the >= 1 s gaps are the server's Retry-After.
    assert (times[1] - times[0]).total_seconds() >= 0.95
    assert (times[2] - times[1]).total_seconds() >= 0.95


def test_retries_give_up_with_the_server_error(spotfire_emulator, connect):
    admin(spotfire_emulator, "PATCH", "config", json={"retry_after": 0})
    admin(spotfire_emulator, "POST", "faults", json={"faults": ["503"] * 4, "path_prefix": "/spotfire/api/"})
    with pytest.raises(SpotfireServerError) as info:
        SpotfireHook(connect(), retry_policy=FAST_RETRIES).call(LIST_LICENSES)
    assert info.value.status_code == 503 and info.value.code == "server_busy"
    assert len(api_log(spotfire_emulator, "/licenses/v1/")) == 4


def test_dropped_connections_are_retried_only_when_safe(spotfire_emulator, connect):
    hook = SpotfireHook(connect(), retry_policy=FAST_RETRIES)
    admin(
        spotfire_emulator, "POST", "faults", json={"faults": ["drop_after"], "path_prefix": "/spotfire/api/"}
    )
    assert hook.call(LIST_LICENSES)  # GET: safe to repeat
    assert len(api_log(spotfire_emulator, "/licenses/v1/")) == 2

    # A start is not idempotent: a response lost after the server acted must not start a second job.
    start = ApiRequest("POST", "rest/as/job/start-library", (S.AUTOMATION_EXECUTE,), params={"path": "/nope"})
    admin(
        spotfire_emulator,
        "POST",
        "faults",
        json={"faults": ["drop_after"], "path_prefix": "/spotfire/api/rest/as"},
    )
    with pytest.raises(SpotfireTransportError):
        hook.call(start)
    assert len(api_log(spotfire_emulator, "/start-library")) == 1

    # ... but a refusal (503) of the same request is retried: the server did not act.
    admin(spotfire_emulator, "PATCH", "config", json={"retry_after": 0})
    admin(
        spotfire_emulator, "POST", "faults", json={"faults": ["503"], "path_prefix": "/spotfire/api/rest/as"}
    )
    hook.call(start)
    assert [e["status"] for e in api_log(spotfire_emulator, "/start-library")][-2:] == [503, 200]


# ---- errors --------------------------------------------------------------------------------------

DOCUMENTED = [
    ("invalid_request", 400, SpotfireBadRequestError),
    ("precondition_failed", 400, SpotfireBadRequestError),
    ("bad_digest", 400, SpotfireBadRequestError),
    ("not_authenticated", 401, SpotfireAuthenticationError),
    ("not_authorized", 403, SpotfirePermissionError),
    ("not_found", 404, SpotfireNotFoundError),
    ("job_unknown", 404, SpotfireNotFoundError),
    ("method_not_allowed", 405, SpotfireApiError),
    ("already_exists", 409, SpotfireConflictError),
    ("limit_exceeded", 413, SpotfireLimitExceededError),
    ("unsupported_mediatype", 415, SpotfireUnsupportedMediaTypeError),
    ("rate_limit_exceeded", 429, SpotfireLimitExceededError),
    ("internal_error", 500, SpotfireServerError),
    ("server_busy", 503, SpotfireServerError),
]


@pytest.mark.parametrize(("code", "status", "cls"), DOCUMENTED)
def test_every_documented_error_code_maps_to_its_exception(code, status, cls):
    body = json.dumps(
        {"error": {"code": code, "description": f"The server says {code}"}, "extra": 1}
    ).encode()
    with pytest.raises(cls) as info:
        raise_for_response("POST", "/spotfire/api/rest/x", HttpResponse(status, {"Retry-After": "7"}, body))
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.code, err.description) == (status, code, f"The server says {code}")
    assert (err.method, err.path, err.retry_after) == ("POST", "/spotfire/api/rest/x", 7.0)
    assert f"The server says {code}" in str(err)


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (418, b"", SpotfireApiError),
        (502, b"<html>Bad gateway</html>", SpotfireServerError),
        (400, b'{"error": "invalid_scope", "error_description": "nope"}', SpotfirePermissionError),
        (404, b"not json at all", SpotfireNotFoundError),
    ],
)
def test_any_status_and_body_is_handled(status, body, cls):
    with pytest.raises(cls):
        raise_for_response("GET", "/p", HttpResponse(status, {}, body))


def test_real_server_errors_carry_code_description_method_and_path(spotfire_emulator, connect):
    with pytest.raises(SpotfireNotFoundError) as info:
        SpotfireHook(connect()).call(
            ApiRequest("GET", "rest/library/v1/upload/abc", (S.LIBRARY_UPLOAD,), idempotent=True)
        )
    err = info.value
    assert (err.status_code, err.code, err.method, err.path) == (
        404,
        "job_unknown",
        "GET",
        "/spotfire/api/rest/library/v1/upload/abc",
    )
    assert err.description and err.description in str(err)
    assert err.to_dict()["code"] == "job_unknown"


def test_links_to_another_origin_do_not_get_the_token(connect):
    hook = SpotfireHook(connect())
    evil = ApiRequest("GET", "https://evil.example.com/steal", (S.LIBRARY_UPLOAD,))
    with pytest.raises(SpotfireError, match="not the connection's origin"):
        hook.call(evil)


# ---- secrets -------------------------------------------------------------------------------------


def test_secrets_and_tokens_are_masked_and_never_logged(spotfire_emulator, connect, caplog):
    from airflow.providers.common.compat.sdk import redact

    caplog.set_level(logging.DEBUG)
    admin(spotfire_emulator, "POST", "faults", json={"faults": ["503"], "path_prefix": "/spotfire/api/"})
    admin(spotfire_emulator, "PATCH", "config", json={"retry_after": 0})
    hook = SpotfireHook(connect(), retry_policy=FAST_RETRIES)
    hook.call(LIST_LICENSES)
    token = hook.get_token((S.LICENSES_READ,)).access_token
    assert "airflow-secret" not in caplog.text and token not in caplog.text
    assert "retry" in caplog.text  # the retry was logged, without secrets
    line = f"secret=airflow-secret token={token}"
    assert redact(line) == "secret=*** token=***"
    assert "airflow-secret" not in repr(hook.config) and token not in repr(hook.get_token((S.LICENSES_READ,)))


# ---- refresh tokens ------------------------------------------------------------------------------


def test_rotated_refresh_tokens_are_kept_and_persisted(spotfire_emulator, connect, token_clock):
    admin(spotfire_emulator, "PATCH", "config", json={"token_lifetime": 10, "rotate_refresh_tokens": True})
    original = refresh_token_for_web_client(spotfire_emulator)
    conn_id = connect("web-client", "web-client-secret", grant_type="refresh_token", refresh_token=original)
    store = MemoryStore()
    hook = SpotfireHook(conn_id, refresh_token_store=store)
    for i in range(3):  # three refreshes, each rotating the refresh token
        token_clock.advance(10 if i else 0)
        hook.call(LIST_LICENSES)
    assert store.value is not None and store.value.refresh_token not in (None, original)
    assert token_requests(spotfire_emulator, "web-client") == 4  # 1 code exchange + 3 refreshes
    assert len(store.writes) == 3 and store.lease is None  # one grant write per refresh, lease released

    # A new process: the connection still holds the (now dead) original token; the store wins.
    TokenManager.clear_all()
    fresh = SpotfireHook(conn_id, refresh_token_store=store)
    assert fresh.call(LIST_LICENSES)
    assert token_requests(spotfire_emulator, "web-client") == 4  # it used the stored access token
    # Without the store the original token is refused: rotation really happened; the fix is named once.
    TokenManager.clear_all()
    with pytest.raises(SpotfireAuthenticationError, match="invalid_grant") as info:
        SpotfireHook(conn_id, refresh_token_store=MemoryStore()).call(LIST_LICENSES)
    assert str(info.value).count(f"airflow-spotfire login --conn-id {conn_id}") == 1


def test_variable_store_persists_rotation_and_a_new_login_wins(spotfire_emulator, connect, airflow_db):
    from airflow.models.variable import Variable

    from airflow_provider_spotfire._tokens import VariableRefreshTokenStore

    original = refresh_token_for_web_client(spotfire_emulator)
    conn_id = connect("web-client", "web-client-secret", grant_type="refresh_token", refresh_token=original)
    SpotfireHook(conn_id).call(LIST_LICENSES)
    stored = json.loads(Variable.get(f"spotfire_refresh_token__{conn_id}"))
    assert stored["refresh_token"] != original and stored["access_token"]
    assert Variable.get(f"spotfire_refresh_lease__{conn_id}") == "null"  # taken, then released

    store = VariableRefreshTokenStore()
    config = SpotfireHook(conn_id).config
    loaded = store.load(config)
    assert loaded is not None and loaded.refresh_token == stored["refresh_token"]
    assert loaded.access_token == stored["access_token"]
    relogin = connect(
        "web-client", "web-client-secret", grant_type="refresh_token", refresh_token="from-new-login"
    )
    assert relogin == conn_id
    assert store.load(SpotfireHook(conn_id).config) is None  # stale Variable ignored after a new login


# ---- async twin ----------------------------------------------------------------------------------


async def test_async_hook_in_a_trigger_like_coroutine_shares_one_token(spotfire_emulator, connect):
    conn_id = connect()

    async def poll_like_a_trigger(n: int) -> int:
        hook = SpotfireAsyncHook(conn_id)
        count = 0
        for _ in range(n):
            count += len(await hook.call(LIST_LICENSES))
            await asyncio.sleep(0)
        return count

    results = await asyncio.gather(*(poll_like_a_trigger(5) for _ in range(40)))
    assert all(r > 0 for r in results)
    assert token_requests(spotfire_emulator, "airflow") == 1
    assert len(api_log(spotfire_emulator, "/licenses/v1/")) == 200


async def test_async_hook_renews_on_401_and_maps_errors(spotfire_emulator, connect):
    hook = SpotfireAsyncHook(connect())
    await hook.call(LIST_LICENSES)
    token = (await hook.get_token((S.LICENSES_READ,))).access_token
    httpx.post(
        f"{spotfire_emulator.url}/spotfire/oauth2/revoke",
        data={"token": token},
        auth=("airflow", "airflow-secret"),
    ).raise_for_status()
    assert await hook.call(LIST_LICENSES)
    with pytest.raises(SpotfireNotFoundError):
        await hook.call(
            ApiRequest("GET", "rest/as/job/status/none", (S.AUTOMATION_EXECUTE,), idempotent=True)
        )


async def test_async_hook_does_not_block_the_event_loop(spotfire_emulator, connect):
    admin(spotfire_emulator, "PATCH", "config", json={"latency_ms": 300})
    hook = SpotfireAsyncHook(connect())
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await hook.call(LIST_LICENSES)
    task.cancel()
    assert ticks >= 10  # the loop kept running during the 300 ms request


# ---- test_connection -----------------------------------------------------------------------------


def test_test_connection_success_lists_granted_scopes(connect):
    ok, message = SpotfireHook(connect()).test_connection()
    assert ok, message
    for scope in S.ALL_API_SCOPES:
        assert scope in message


def test_test_connection_tells_failures_apart(spotfire_emulator, connect, monkeypatch):
    ok, message = SpotfireHook(connect("airflow", "bad")).test_connection()
    assert not ok and "Bad client id/secret" in message

    admin(
        spotfire_emulator,
        "POST",
        "clients",
        json={"client_id": "no-scopes", "client_secret": "x", "scopes": []},
    )
    ok, message = SpotfireHook(connect("no-scopes", "x")).test_connection()
    assert not ok and "granted none of the scopes" in message

    ok, message = SpotfireHook(connect("library-only", "library-only-secret")).test_connection()
    assert ok and "not granted" in message and S.LICENSES_READ in message

    monkeypatch.setenv(
        "AIRFLOW_CONN_SF_DOWN",
        json.dumps({"conn_type": "spotfire", "host": "http://127.0.0.1:9", "login": "a", "password": "b"}),
    )
    ok, message = SpotfireHook("sf_down", retry_policy=FAST_RETRIES).test_connection()
    assert not ok and "unreachable" in message


def test_test_connection_reports_tls_failure_and_verify_false_works(monkeypatch):
    from airflow_provider_spotfire.emulator.server import EmulatorServer

    with EmulatorServer(tls=True) as server:
        assert server.url.startswith("https://")
        payload = {
            "conn_type": "spotfire",
            "host": server.url,
            "login": "airflow",
            "password": "airflow-secret",
        }
        monkeypatch.setenv("AIRFLOW_CONN_SF_TLS", json.dumps(payload))
        ok, message = SpotfireHook("sf_tls").test_connection()
        assert not ok and "TLS" in message
        monkeypatch.setenv("AIRFLOW_CONN_SF_TLS_OFF", json.dumps({**payload, "extra": {"verify": False}}))
        ok, message = SpotfireHook("sf_tls_off").test_connection()
        assert ok, message


def test_no_network_io_in_init(spotfire_emulator):
    SpotfireHook("does_not_exist")
    SpotfireAsyncHook("does_not_exist")
    assert admin(spotfire_emulator, "GET", "requests") == []


async def test_async_hooks_share_one_refresh_and_never_block_the_loop_on_the_store(
    spotfire_emulator, connect
):
    """40 trigger-like coroutines on a refresh-token connection: one refresh, store I/O off the loop."""
    original = refresh_token_for_web_client(spotfire_emulator)
    conn_id = connect("web-client", "web-client-secret", grant_type="refresh_token", refresh_token=original)

    class SlowStore(MemoryStore):
        def load(self, config):  # a blocking store call, like a Variable read through the api-server
            time.sleep(2.0)
            return super().load(config)

    store = SlowStore()
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def poll_like_a_trigger() -> int:
        return len(await SpotfireAsyncHook(conn_id, refresh_token_store=store).call(LIST_LICENSES))

    tick_task = asyncio.create_task(ticker())
    results = await asyncio.gather(*(poll_like_a_trigger() for _ in range(40)))
    done.set()
    await tick_task
    assert all(r > 0 for r in results)
    assert token_requests(spotfire_emulator, "web-client") == 2  # the code exchange + one refresh
    assert store.value is not None and store.value.refresh_token != original and store.lease is None
    assert store.reads >= 2
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    # each 2 s store read ran in a thread, not in the loop (a read on the loop would stall it >= 2 s;
    # the margin absorbs scheduling stalls of a loaded machine)
    assert max(gaps) < 1.5, max(gaps)
