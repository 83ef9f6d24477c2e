"""The sync (requests) and async (aiohttp) transports give the same result for the same server answer.

Each case sends the same :class:`HttpRequest` over real HTTP to the emulator (or to a closed port, or
to a TLS emulator with a self-signed certificate) through :class:`SyncTransport` and
:class:`AsyncTransport`, and compares what came back: the exception type, status, code,
``Retry-After``, whether the request may have been sent, and the message; or the response.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_spotfire._http import HttpRequest, RetryPolicy, SyncTransport
from airflow_provider_spotfire._http_async import AsyncTransport, close_shared_clients, shared_async_client
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.emulator.server import EmulatorServer
from airflow_provider_spotfire.exceptions import SpotfireError, SpotfireTLSError, SpotfireTransportError

ONE_ATTEMPT = RetryPolicy(max_attempts=1)
STATUS = "/spotfire/api/rest/as/job/status/"
UNKNOWN_JOB = "00000000-0000-0000-0000-000000000000"


def token(server: EmulatorServer, scope: str, verify: Any = False) -> str:
    resp = httpx.post(
        f"{server.url}/spotfire/oauth2/token",
        auth=("airflow", server.client_secret("airflow") or ""),
        data={"grant_type": "client_credentials", "scope": scope},
        verify=verify,
        timeout=20,
    )
    resp.raise_for_status()
    return resp.json()["access_token"]


def status_request(base_url: str, bearer: str, job_id: str = UNKNOWN_JOB) -> HttpRequest:
    return HttpRequest("GET", f"{base_url}{STATUS}{job_id}", headers={"Authorization": f"Bearer {bearer}"})


def outcome(result: Any) -> dict[str, Any]:
    """What a caller can observe of a send: the response, or the exception's fields."""
    if isinstance(result, BaseException):
        return {
            "type": type(result).__name__,
            "status_code": getattr(result, "status_code", None),
            "code": getattr(result, "code", None),
            "retry_after": getattr(result, "retry_after", None),
            "request_sent": getattr(result, "request_sent", None),
            # the transport library's own exception name and text differ; our sentence does not
            "message": str(result).split(": ")[0],
            "full_message": str(result) if not isinstance(result, SpotfireTransportError) else None,
        }
    return {"status_code": result.status_code, "json": result.json()}


def send_sync(
    req: HttpRequest, *, verify: Any = True, timeout: float = 20, policy: RetryPolicy = ONE_ATTEMPT
) -> Any:
    transport = SyncTransport(verify=verify, timeout=timeout, policy=policy, client_id="airflow")
    try:
        return transport.send(req, idempotent=True)
    except SpotfireError as exc:
        return exc
    finally:
        transport.close()


async def send_async(
    req: HttpRequest, *, verify: Any = True, timeout: float = 20, policy: RetryPolicy = ONE_ATTEMPT
) -> Any:
    transport = AsyncTransport(shared_async_client(verify, timeout), policy=policy, client_id="airflow")
    try:
        return await transport.send(req, idempotent=True)
    except SpotfireError as exc:
        return exc
    finally:
        await close_shared_clients()


async def both(
    req: HttpRequest, prepare: Callable[[], None] = lambda: None, **kwargs: Any
) -> tuple[Any, Any]:
    prepare()
    sync = send_sync(req, **kwargs)
    prepare()
    return sync, await send_async(req, **kwargs)


@pytest.fixture
def emulator(spotfire_emulator: EmulatorServer) -> EmulatorServer:
    return spotfire_emulator


@pytest.fixture(scope="module")
def tls_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(tls=True) as server:
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- HTTP error answers ---------------------------------------------------------------------------
async def test_401_invalid_token(emulator):
    sync, async_ = await both(status_request(emulator.url, "not-a-token"))
    assert outcome(sync) == outcome(async_)
    assert outcome(sync)["type"] == "SpotfireAuthenticationError" and sync.status_code == 401


async def test_403_token_without_the_scope(emulator):
    req = status_request(emulator.url, token(emulator, S.LIBRARY_UPLOAD))
    sync, async_ = await both(req)
    assert outcome(sync) == outcome(async_)
    assert sync.status_code == 403 and "scope" in str(sync)


async def test_404_unknown_job(emulator):
    req = status_request(emulator.url, token(emulator, S.AUTOMATION_EXECUTE))
    sync, async_ = await both(req)
    assert outcome(sync) == outcome(async_)
    assert sync.status_code == 404


@pytest.mark.parametrize("status", ["429", "503"])
async def test_refusals_carry_retry_after(emulator, status):
    req = status_request(emulator.url, token(emulator, S.AUTOMATION_EXECUTE))
    emulator.set_config(retry_after=7)
    sync, async_ = await both(req, lambda: emulator.inject_faults(status, path_prefix=STATUS))
    assert outcome(sync) == outcome(async_)
    assert (sync.status_code, sync.retry_after) == (int(status), 7.0)


async def test_a_refusal_is_retried_after_retry_after_on_both_paths(emulator):
    bearer = token(emulator, S.AUTOMATION_EXECUTE)
    emulator.set_config(retry_after=0)
    policy = RetryPolicy(max_attempts=3)
    req = status_request(emulator.url, bearer)
    sync, async_ = await both(
        req, lambda: emulator.inject_faults("503", "429", path_prefix=STATUS), policy=policy
    )
    assert outcome(sync) == outcome(async_)
    assert sync.status_code == 404  # the third attempt got the real answer
    polls = emulator.requests_log(path_prefix=STATUS)
    assert [p["status"] for p in polls] == [503, 429, 404] * 2


# ---- transport failures ---------------------------------------------------------------------------
async def test_connection_refused_was_not_sent():
    sync, async_ = await both(status_request(f"http://127.0.0.1:{closed_port()}", "x"))
    assert outcome(sync) == outcome(async_)
    assert type(sync) is SpotfireTransportError and sync.request_sent is False


async def test_dropped_connection_may_have_been_sent(emulator):
    req = status_request(emulator.url, token(emulator, S.AUTOMATION_EXECUTE))
    sync, async_ = await both(req, lambda: emulator.inject_faults("drop_after", path_prefix=STATUS))
    assert outcome(sync) == outcome(async_)
    assert type(sync) is SpotfireTransportError and sync.request_sent is True


async def test_read_timeout(emulator):
    req = status_request(emulator.url, token(emulator, S.AUTOMATION_EXECUTE))
    emulator.set_config(latency_ms=1500)
    sync, async_ = await both(req, timeout=0.3)
    assert outcome(sync) == outcome(async_)
    assert type(sync) is SpotfireTransportError and sync.request_sent is True


# ---- TLS ------------------------------------------------------------------------------------------
async def test_tls_verified_by_default_against_a_self_signed_server(tls_emulator):
    sync, async_ = await both(status_request(tls_emulator.url, "x"))
    assert outcome(sync) == outcome(async_)
    assert type(sync) is SpotfireTLSError and sync.request_sent is False


@pytest.mark.parametrize("verify", ["ca_bundle", False])
async def test_tls_with_the_ca_bundle_or_verification_off(tls_emulator, verify):
    setting = tls_emulator.cert_path if verify == "ca_bundle" else False
    bearer = token(tls_emulator, S.AUTOMATION_EXECUTE, verify=tls_emulator.cert_path)
    sync, async_ = await both(status_request(tls_emulator.url, bearer), verify=setting)
    assert outcome(sync) == outcome(async_)
    assert sync.status_code == 404  # the server's real answer: TLS passed on both paths


# ---- what is sent ---------------------------------------------------------------------------------
async def test_the_same_query_and_body_reach_the_server(emulator):
    params = {"reason": "a b&c/é", "n": 3, "skip": None, "multi": ["x", "y"]}
    req = HttpRequest(
        "POST",
        f"{emulator.url}/spotfire/api/rest/as/job/abort/{UNKNOWN_JOB}",
        params=params,
        headers={"Authorization": "Bearer x"},
        json={"k": [1, "two"]},
    )
    sync, async_ = await both(req)
    assert outcome(sync) == outcome(async_)
    sent = [
        (r["query"], r["content_type"], r["content_length"])
        for r in emulator.requests_log(path_prefix=req.path)
    ]
    assert len(sent) == 2 and sent[0] == sent[1], sent
    assert "skip" not in sent[0][0] and "multi=x&multi=y" in sent[0][0]
