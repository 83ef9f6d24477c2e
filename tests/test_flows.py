"""The sans-IO flows (call loop, scope fallback, operations) and the two drivers that run them."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import urllib3

from airflow_provider_spotfire import license_sync
from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import (
    HttpRequest,
    HttpResponse,
    RetryPolicy,
    SyncTransport,
    is_tls_failure,
    never_sent,
    transport_error,
)
from airflow_provider_spotfire._tokens import Token
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.automation import (
    MISSING,
    AutomationJobSource,
    BusyRetry,
    ExecutionStatus,
    build_get_job_status,
)
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.exceptions import (
    SpotfireAuthenticationError,
    SpotfireNotFoundError,
    SpotfirePermissionError,
    SpotfireServerError,
    SpotfireTLSError,
    SpotfireTransportError,
)
from airflow_provider_spotfire.hooks import automation, licenses
from airflow_provider_spotfire.hooks.flow import (
    FetchToken,
    ForgetToken,
    Send,
    Sleep,
    call_flow,
    drive,
    operation_flow,
    token_flow,
)
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook, SpotfireHook
from tests.licenses.conftest import METRICS, SALES_EMEA, UPLOADERS

CONFIG = SpotfireConnectionConfig.from_connection(
    type("Conn", (), {"conn_id": "c", "host": "https://sf.example.com", "login": "client", "password": "s"})()
)
READ_EITHER = (S.LICENSES_READ, S.LICENSES_WRITE)


def token(value: str, scope: str = S.LICENSES_READ) -> Token:
    return Token(access_token=value, scopes=frozenset({scope}), expires_at=10.0**10, lifetime=3600.0)


def api_error(cls: type, status: int, code: str) -> Exception:
    return cls(f"{status} {code}", status_code=status, code=code, method="GET", path="/x")


def ok(body: Any) -> HttpResponse:
    return HttpResponse(200, {}, json.dumps(body).encode())


class ScriptedDriver:
    """Answers driver steps from a script and records them: a driver without any I/O."""

    def __init__(self, answers: list[Callable[[Any], Any]]) -> None:
        self.answers = answers
        self.steps: list[Any] = []

    def __call__(self, step: Any) -> Any:
        self.steps.append(step)
        answer = self.answers.pop(0)(step)
        if isinstance(answer, Exception):
            raise answer
        return answer


# ---- the call loop --------------------------------------------------------------------------------


def test_a_401_forgets_the_token_fetches_another_and_sends_once_more():
    request = ApiRequest("GET", "rest/licenses/v1", READ_EITHER, idempotent=True)
    driver = ScriptedDriver(
        [
            lambda s: token("old"),
            lambda s: api_error(SpotfireAuthenticationError, 401, "invalid_token"),
            lambda s: None,
            lambda s: token("new"),
            lambda s: ok(["answer"]),
        ]
    )
    assert drive(call_flow(request, CONFIG, {}), driver) == ["answer"]
    kinds = [type(s) for s in driver.steps]
    assert kinds == [FetchToken, Send, ForgetToken, FetchToken, Send]
    assert driver.steps[2] == ForgetToken("old")
    assert driver.steps[1].request.headers["Authorization"] == "Bearer old"
    assert driver.steps[4].request.headers["Authorization"] == "Bearer new"
    assert driver.steps[4].idempotent is True


def test_a_second_401_is_raised_not_looped():
    request = ApiRequest("GET", "rest/licenses/v1", (S.LICENSES_READ,))
    rejected = api_error(SpotfireAuthenticationError, 401, "invalid_token")
    driver = ScriptedDriver([lambda s: token("a"), lambda s: rejected, lambda s: None, lambda s: token("b")])
    driver.answers.append(lambda s: rejected)
    with pytest.raises(SpotfireAuthenticationError):
        drive(call_flow(request, CONFIG, {}), driver)
    assert [type(s) for s in driver.steps] == [FetchToken, Send, ForgetToken, FetchToken, Send]


def test_a_403_is_not_a_reason_to_renew_the_token():
    request = ApiRequest("GET", "rest/licenses/v1", (S.LICENSES_READ,))
    driver = ScriptedDriver(
        [lambda s: token("a"), lambda s: api_error(SpotfireAuthenticationError, 403, "not_authenticated")]
    )
    with pytest.raises(SpotfireAuthenticationError):
        drive(call_flow(request, CONFIG, {}), driver)
    assert len(driver.steps) == 2


# ---- scope fallback -------------------------------------------------------------------------------


def test_a_refused_scope_falls_back_to_the_next_and_the_choice_is_remembered():
    choice: dict[tuple[str, ...], str] = {}
    driver = ScriptedDriver(
        [
            lambda s: api_error(SpotfirePermissionError, 400, "invalid_scope"),
            lambda s: token("w", S.LICENSES_WRITE),
        ]
    )
    assert drive(token_flow(READ_EITHER, choice), driver).access_token == "w"
    assert driver.steps == [FetchToken(S.LICENSES_READ), FetchToken(S.LICENSES_WRITE)]
    assert choice == {READ_EITHER: S.LICENSES_WRITE}

    again = ScriptedDriver([lambda s: token("w2", S.LICENSES_WRITE)])
    drive(token_flow(READ_EITHER, choice), again)
    assert again.steps == [FetchToken(S.LICENSES_WRITE)]  # the refused scope is not asked again


def test_every_scope_refused_raises_the_last_refusal():
    driver = ScriptedDriver(
        [
            lambda s: api_error(SpotfirePermissionError, 400, "invalid_scope"),
            lambda s: api_error(SpotfirePermissionError, 400, "unauthorized_client"),
        ]
    )
    with pytest.raises(SpotfirePermissionError) as info:
        drive(token_flow(READ_EITHER, {}), driver)
    assert info.value.code == "unauthorized_client"


def test_an_error_that_is_not_a_scope_refusal_is_raised_at_once():
    driver = ScriptedDriver([lambda s: api_error(SpotfireAuthenticationError, 401, "invalid_client")])
    with pytest.raises(SpotfireAuthenticationError):
        drive(token_flow(READ_EITHER, {}), driver)
    assert driver.steps == [FetchToken(S.LICENSES_READ)]


# ---- operations -----------------------------------------------------------------------------------


def test_an_operation_gets_the_errors_of_its_requests_and_may_handle_them():
    not_found = api_error(SpotfireNotFoundError, 404, "job_unknown")
    driver = ScriptedDriver([lambda s: token("t"), lambda s: not_found])
    status = drive(
        operation_flow(automation.get_automation_job_status("j1", missing_ok=True), CONFIG, {}), driver
    )
    assert status == ExecutionStatus(
        "j1", MISSING, "Job not found: the server does not know this job id (404)"
    )
    assert driver.steps[1].request.url.endswith("/rest/as/job/status/j1")


def test_an_operation_that_does_not_handle_an_error_raises_it():
    driver = ScriptedDriver(
        [lambda s: token("t"), lambda s: api_error(SpotfireServerError, 500, "internal_error")]
    )
    with pytest.raises(SpotfireServerError):
        drive(operation_flow(automation.get_automation_job_status("j1"), CONFIG, {}), driver)


def test_a_busy_start_sleeps_through_the_driver_between_starts():
    busy = ok({"JobId": None, "StatusCode": "Busy", "Message": "full"})
    started = ok({"JobId": "j9", "StatusCode": "Queued"})
    driver = ScriptedDriver(
        [lambda s: token("t"), lambda s: busy, lambda s: None, lambda s: token("t"), lambda s: started]
    )
    source = AutomationJobSource(library_path="/Jobs/A")
    flow = automation.start_automation_job(source, busy_retry=BusyRetry(initial_delay=2.0, max_delay=2.0))
    status = drive(operation_flow(flow, CONFIG, {}), driver)
    assert status.job_id == "j9"
    sleep = driver.steps[2]
    assert isinstance(sleep, Sleep) and 1.0 <= sleep.seconds <= 2.0


def test_the_request_of_a_status_read_is_the_builders():
    built = build_get_job_status("a/b")
    assert built.path == "rest/as/job/status/a%2Fb" and built.idempotent and built.method == "GET"


# ---- both hooks run the same operations over real HTTP --------------------------------------------


async def test_the_async_hook_has_every_method_of_the_sync_hook_and_they_agree(
    spotfire_conn_id, spotfire_emulator
):
    sync_hook, async_hook = SpotfireHook(spotfire_conn_id), SpotfireAsyncHook(spotfire_conn_id)
    assert await async_hook.list_licenses() == sync_hook.list_licenses()
    plan = {METRICS: ["viewMetrics"]}
    sync_diff = sync_hook.sync_group_licenses(UPLOADERS, plan, dry_run=True)
    async_diff = await async_hook.sync_group_licenses(UPLOADERS, plan, dry_run=True)
    assert async_diff == sync_diff and sync_diff["changes"][0]["action"] == "add"
    writes = [
        e
        for e in spotfire_emulator.http().get("/_emulator/requests").json()
        if e["method"] in ("PUT", "DELETE")
    ]
    assert writes == []  # a dry run writes nothing, on either hook
    sync_hook.close()


async def test_async_license_writes_explain_refusals_like_the_sync_hook(spotfire_emulator, monkeypatch):
    reader = "spotfire_flow_reader"
    monkeypatch.setenv(f"AIRFLOW_CONN_{reader.upper()}", spotfire_emulator.connection_json("licenses-reader"))
    with pytest.raises(SpotfirePermissionError) as sync_err:
        SpotfireHook(reader, retry_policy=RetryPolicy(max_attempts=1)).set_group_license(
            METRICS, SALES_EMEA, []
        )
    with pytest.raises(SpotfirePermissionError) as async_err:
        await SpotfireAsyncHook(reader, retry_policy=RetryPolicy(max_attempts=1)).set_group_license(
            METRICS, SALES_EMEA, []
        )
    assert "lacks the scope api.licenses.write" in str(sync_err.value)
    assert str(async_err.value) == str(sync_err.value)


def test_hook_methods_keep_their_docstrings():
    assert SpotfireHook.get_automation_job_status.__doc__ == automation.get_automation_job_status.__doc__
    assert "Set a license on a group" in (SpotfireHook.set_group_license.__doc__ or "")


def test_the_hooks_license_writes_are_the_plain_api_calls():
    # license_sync has checked flows of the same names (other argument order); the hooks keep the API's
    for hook in (SpotfireHook, SpotfireAsyncHook):
        assert hook.set_group_license.__wrapped__ is licenses.set_group_license
        assert hook.remove_group_license.__wrapped__ is licenses.remove_group_license
        assert hook.sync_group_licenses.__wrapped__ is license_sync.sync_group_licenses


# ---- transport failures, classified by exception type ---------------------------------------------


def _requests_connection_error(reason: BaseException) -> requests.exceptions.ConnectionError:
    wrapped = urllib3.exceptions.MaxRetryError(None, "https://sf.example.com/x", reason)  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(wrapped)


def test_dns_failure_and_refusal_mean_the_request_never_left():
    dns = urllib3.exceptions.NameResolutionError("sf.example.com", None, socket.gaierror(-2, "Name unknown"))  # type: ignore[arg-type]
    assert never_sent(_requests_connection_error(dns))
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    assert never_sent(_requests_connection_error(refused))
    assert never_sent(requests.exceptions.ConnectTimeout())
    assert never_sent(httpx.ConnectError("refused"))


def test_a_broken_connection_after_sending_may_have_reached_the_server():
    aborted = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    assert not never_sent(requests.exceptions.ConnectionError(aborted))
    assert not never_sent(requests.exceptions.ReadTimeout())
    assert not never_sent(httpx.ReadError("reset"))


def test_tls_is_recognised_by_type_anywhere_in_the_chain_not_by_words():
    cert = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert is_tls_failure(requests.exceptions.SSLError(urllib3.exceptions.SSLError(cert)))
    try:
        try:
            raise cert
        except ssl.SSLError as inner:
            raise httpx.ConnectError("handshake failed") from inner
    except httpx.ConnectError as chained:
        assert is_tls_failure(chained)
    # a message that merely mentions "ssl" is not a TLS failure
    assert not is_tls_failure(requests.exceptions.ConnectionError("connection to ssl-gateway reset"))


def test_transport_error_carries_request_sent_as_a_field():
    err = transport_error("POST", "/x", requests.exceptions.ReadTimeout("slow"), sent=True)
    assert type(err) is SpotfireTransportError and err.request_sent is True
    tls = transport_error("GET", "/x", requests.exceptions.SSLError("bad cert"), sent=True)
    assert isinstance(tls, SpotfireTLSError) and tls.request_sent is False
    assert SpotfireTransportError("x", request_sent=False).request_sent is False
    policy = RetryPolicy()
    assert policy.is_retryable(SpotfireTransportError("x", request_sent=False), idempotent=False)
    assert not policy.is_retryable(SpotfireTransportError("x", request_sent=True), idempotent=False)


def test_a_refused_port_is_a_not_sent_transport_error_over_real_sockets():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SyncTransport(verify=True, timeout=5, policy=RetryPolicy(max_attempts=1), client_id="c")
    with pytest.raises(SpotfireTransportError) as info:
        transport.send(HttpRequest("POST", f"http://127.0.0.1:{port}/x"), idempotent=False)
    assert info.value.request_sent is False and not isinstance(info.value, SpotfireTLSError)
    transport.close()
