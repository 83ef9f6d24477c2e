"""``airflow-spotfire login`` / ``revoke`` end to end against the emulator over real HTTP.

The "browser" is httpx: it GETs the authorization URL (the emulator auto-approves user alice and
answers 302), optionally tampers with the redirect like an attacker would, and GETs the
``Location`` on the CLI's loopback server. Connections live in the suite's sqlite metadata DB.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from airflow_provider_spotfire import cli
from airflow_provider_spotfire._login import LoginError, run_login, run_revoke
from airflow_provider_spotfire._tokens import TokenManager
from airflow_provider_spotfire.emulator.seed import ALL_SCOPES, API_SCOPES, USER_ALICE
from airflow_provider_spotfire.exceptions import SpotfireTLSError
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from tests.helpers import AIRFLOW_BELOW_3_2

NATIVE = "spotfire_native"
WEB = "spotfire_web"
WEB_SECRET = "airflow-web-secret-0123456789"


# ------------------------------------------------------------------------------------------ helpers
def _with_param(url: str, name: str, value: str | None) -> str:
    """``url`` with query parameter ``name`` replaced (or removed when ``value`` is None)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if value is not None:
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


class Browser:
    """Plays the user's browser: follows the authorization redirect to the loopback server."""

    def __init__(self, tamper: Callable[[str], str] | None = None, verify: str | bool = True) -> None:
        self.tamper = tamper
        # a CA bundle path as an SSL context (httpx deprecates verify=<str>)
        self.verify = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        self.authorize: httpx.Response | None = None
        self.callback: httpx.Response | None = None

    def __call__(self, url: str) -> None:
        with httpx.Client(timeout=10, follow_redirects=False, verify=self.verify) as client:
            self.authorize = client.get(url)
            if self.authorize.status_code != 302:
                return  # an error page: a user would stay there
            location = self.authorize.headers["location"]
            self.callback = client.get(self.tamper(location) if self.tamper else location)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _put_connection(
    conn_id: str, *, host: str, login: str, password: str | None, extra: dict[str, Any]
) -> None:
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == conn_id))
    with create_session() as session:
        session.add(
            Connection(
                conn_id=conn_id,
                conn_type="spotfire",
                host=host,
                login=login,
                password=password,
                extra=json.dumps(extra),
            )
        )
    Variable.delete(f"spotfire_refresh_token__{conn_id}")


def _extra(conn_id: str) -> dict[str, Any]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        assert conn is not None
        return json.loads(conn.extra or "{}")


def _hook(conn_id: str, monkeypatch: pytest.MonkeyPatch) -> SpotfireHook:
    """The hook, seeing the connection as a task would.

    Outside a task, Airflow 3.1's task SDK reads connections from the environment and secrets backends
    only (3.2+ also reads the metadata DB there, see ``_AIRFLOW_PROCESS_CONTEXT`` in ``env``); a task
    gets the DB row from the API server. On 3.1 the row is handed to the hook in the environment
    while it reads its connection (the CLI, run next, must find it in the DB again).
    """
    hook = SpotfireHook(conn_id)
    if AIRFLOW_BELOW_3_2:
        from airflow.models.connection import Connection
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
            assert conn is not None
            row, login = conn.as_json(), conn.login
        with monkeypatch.context() as patch:
            patch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", row)
            assert hook.config.client_id == login  # reads the connection now
    return hook


def _refresh_grant(
    emulator: Any, client_id: str, refresh_token: str, secret: str | None = None
) -> httpx.Response:
    """A raw refresh_token grant at the emulator's token endpoint."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if secret is None:
        data["client_id"] = client_id
    return httpx.post(
        emulator.url + "/spotfire/oauth2/token",
        data=data,
        auth=(client_id, secret) if secret else None,
        timeout=10,
    )


@pytest.fixture
def env(
    airflow_db: Any, spotfire_emulator: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[Any]:
    """Emulator + metadata DB with connections for the native client and a web client (loopback URI)."""
    # Read connections and Variables from the metadata DB, as Airflow's server components do.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    monkeypatch.delenv(f"AIRFLOW_CONN_{NATIVE.upper()}", raising=False)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="httpx")  # the test browser's request log shows the code
    web_port = _free_port()
    spotfire_emulator.state.register_client(
        client_id="airflow-web",
        client_secret=WEB_SECRET,
        profile="web",
        scopes=list(ALL_SCOPES),
        redirect_uris=[f"http://127.0.0.1:{web_port}/auth"],
    )
    _put_connection(NATIVE, host=spotfire_emulator.url, login="native-client", password=None, extra={})
    _put_connection(
        WEB, host=spotfire_emulator.url, login="airflow-web", password=WEB_SECRET, extra={"timeout": 10}
    )
    spotfire_emulator.web_port = web_port
    TokenManager.clear_all()
    yield spotfire_emulator
    TokenManager.clear_all()


def _assert_no_secrets(texts: list[str], *secrets: str | None) -> None:
    for secret in filter(None, secrets):
        for text in texts:
            assert secret not in text


# ------------------------------------------------------------------------------------------ tests
def test_native_client_login_then_hook_uses_refresh_token(
    env: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser()
    result = run_login(NATIVE, open_url=browser, timeout=10)

    assert browser.callback is not None and browser.callback.status_code == 200
    assert "close this window" in browser.callback.text
    code = dict(parse_qsl(urlsplit(browser.authorize.headers["location"]).query))["code"]
    auth_query = dict(parse_qsl(urlsplit(str(browser.authorize.request.url)).query))
    assert auth_query["code_challenge_method"] == "S256" and len(auth_query["code_challenge"]) == 43
    assert auth_query["redirect_uri"] == result.redirect_uri
    assert urlsplit(result.redirect_uri).hostname == "127.0.0.1" and result.redirect_uri.endswith("/auth")
    assert set(auth_query["scope"].split()) == {*API_SCOPES, "offline"}
    assert result.saved and set(result.scopes) == {*API_SCOPES, "offline"}
    extra = _extra(NATIVE)
    assert extra["grant_type"] == "refresh_token" and extra["refresh_token"] == result.refresh_token
    stored = env.state.tokens[result.refresh_token]
    assert (stored.kind, stored.client_id, stored.user_id) == ("refresh", "native-client", USER_ALICE)

    hook = _hook(NATIVE, monkeypatch)
    token = hook.get_token(("api.rest.library.upload",))
    assert hook.token_manager.token_requests == 1
    issued = env.state.tokens[token.access_token]
    assert (issued.kind, issued.client_id, issued.user_id) == ("access", "native-client", USER_ALICE)
    assert issued.grant_id == stored.grant_id  # the refresh grant of this login
    assert {lic.name for lic in hook.list_licenses()}  # a real API call as alice
    assert env.state.counters["token_requests"]["native-client"] == 2  # code exchange + refresh

    out, err = capsys.readouterr()
    _assert_no_secrets(
        [out, err, caplog.text],
        result.refresh_token,
        token.access_token,
        code,
        hook.token_manager.shared.refresh_token,
    )


def test_web_client_login_via_cli_main(
    env: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser()
    monkeypatch.setattr("webbrowser.open", lambda url: browser(url) or True)
    rc = cli.main(
        [
            "login",
            "--conn-id",
            WEB,
            "--port",
            str(env.web_port),
            "--scopes",
            "api.licenses.read",
            "--timeout",
            "10",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"connection '{WEB}'" in out and "scopes: api.licenses.read offline" in out

    refresh_token = _extra(WEB)["refresh_token"]
    assert env.state.tokens[refresh_token].client_id == "airflow-web"
    assert env.state.tokens[refresh_token].scopes == ["api.licenses.read", "offline"]
    token_log = env.requests_log("/spotfire/oauth2/token")
    assert [(e["client_id"], e["auth_scheme"], e["status"]) for e in token_log] == [
        ("airflow-web", "Basic", 200)
    ]

    hook = _hook(WEB, monkeypatch)
    assert hook.list_licenses()
    assert hook.token_manager.token_requests == 1
    _assert_no_secrets([out, err, caplog.text], refresh_token, WEB_SECRET)


def test_web_client_with_unregistered_redirect_times_out_with_advice(env: Any) -> None:
    browser = Browser()
    with pytest.raises(LoginError, match=r"No browser redirect arrived .*web clients need the redirect URI"):
        run_login(WEB, open_url=browser, port=0, timeout=0.5)
    assert browser.authorize is not None and browser.authorize.status_code == 400
    assert "Invalid redirect_uri" in browser.authorize.text
    assert "refresh_token" not in _extra(WEB)


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (lambda loc: _with_param(loc, "state", "forged-state"), "does not carry the state of this login"),
        (lambda loc: _with_param(loc, "state", None), "does not carry the state of this login"),
        (lambda loc: _with_param(loc, "iss", "https://evil.example.com/spotfire"), "comes from issuer"),
        (lambda loc: _with_param(loc, "iss", None), "has no iss parameter"),
    ],
    ids=["wrong-state", "missing-state", "wrong-iss", "missing-iss"],
)
def test_tampered_redirect_is_rejected(env: Any, tamper: Callable[[str], str], match: str) -> None:
    browser = Browser(tamper)
    with pytest.raises(LoginError, match=match):
        run_login(NATIVE, open_url=browser, timeout=10)
    assert "refresh_token" not in _extra(NATIVE)
    assert "native-client" not in env.state.counters["token_requests"]  # the code was never redeemed


def test_access_denied_is_reported(
    env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.set_config(authorize_deny=True)
    browser = Browser()
    monkeypatch.setattr("webbrowser.open", lambda url: browser(url) or True)
    assert cli.main(["login", "--conn-id", NATIVE, "--timeout", "10"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("airflow-spotfire: error: Spotfire refused the authorization: access_denied")
    assert "Sign in as a user who may" in err
    assert browser.callback is not None and "not completed" in browser.callback.text
    assert "refresh_token" not in _extra(NATIVE)


def test_no_browser_prints_the_url_and_times_out(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["login", "--conn-id", NATIVE, "--no-browser", "--timeout", "0.3"]) == 1
    err = capsys.readouterr().err
    url = next(line for line in err.splitlines() if line.startswith(env.url + "/spotfire/oauth2/auth?"))
    assert "code_challenge=" in url and "client_id=native-client" in url
    assert err.splitlines()[-1].startswith("airflow-spotfire: error: No browser redirect arrived")


def test_revoke_makes_token_unusable_and_clears_connection(
    env: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = run_login(NATIVE, open_url=Browser(), timeout=10)
    refresh_token = result.refresh_token
    # Rotation: the hook's refresh replaces the token; the rotated one goes to the Variable.
    hook = _hook(NATIVE, monkeypatch)
    hook.get_token(("api.licenses.read",))
    rotated = hook.token_manager.shared.refresh_token
    assert rotated and rotated != refresh_token
    from airflow.models.variable import Variable

    key = f"spotfire_refresh_token__{NATIVE}"
    assert json.loads(Variable.get(key))["refresh_token"] == rotated

    assert cli.main(["revoke", "--conn-id", NATIVE]) == 0
    out, err = capsys.readouterr()
    assert "Removed the refresh token" in out and "Revoked 2 refresh token(s)" in err

    extra = _extra(NATIVE)
    assert "refresh_token" not in extra and extra["grant_type"] == "refresh_token"
    for value in (refresh_token, rotated):
        r = _refresh_grant(env, "native-client", value)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    revocations = env.requests_log("/spotfire/oauth2/revoke")
    assert revocations and all(e["status"] == 200 for e in revocations)

    assert Variable.get(key, default_var=None) is None
    TokenManager.clear_all()
    with pytest.raises(Exception, match="has no refresh_token extra"):
        _hook(NATIVE, monkeypatch).get_token(("api.licenses.read",))
    _assert_no_secrets([out, err, caplog.text], refresh_token, rotated)


def test_revoke_web_client_uses_basic_auth(env: Any) -> None:
    result = run_login(WEB, open_url=Browser(), port=env.web_port, timeout=10)
    revoked = run_revoke(WEB, echo=lambda message: None)
    assert revoked.revoked == 1 and revoked.removed_from_connection and not revoked.variable_cleared
    assert (
        _refresh_grant(env, "airflow-web", result.refresh_token, WEB_SECRET).json()["error"]
        == "invalid_grant"
    )
    last = env.requests_log("/spotfire/oauth2/revoke")[-1]
    assert (last["client_id"], last["auth_scheme"], last["status"]) == ("airflow-web", "Basic", 200)


def test_connection_from_env_var_is_refused_with_advice(
    env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = "spotfire_from_env"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", env.connection_json("native-client"))
    assert cli.main(["login", "--conn-id", conn_id]) == 1
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert f"environment variable AIRFLOW_CONN_{conn_id.upper()}" in err and "--print-extra" in err


def test_print_extra_for_env_var_connection(
    env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = "spotfire_from_env"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", env.connection_json("native-client", extra={"timeout": 5})
    )
    browser = Browser()
    monkeypatch.setattr("webbrowser.open", lambda url: browser(url) or True)
    assert cli.main(["login", "--conn-id", conn_id, "--print-extra", "--timeout", "10"]) == 0
    out, err = capsys.readouterr()
    extra = json.loads(out)
    assert extra["grant_type"] == "refresh_token" and extra["timeout"] == 5
    assert env.state.tokens[extra["refresh_token"]].client_id == "native-client"
    assert "NOT stored" in err and "a secret" in err
    assert extra["refresh_token"] not in err


def test_bad_arguments_and_missing_connection(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["login", "--conn-id", "nope"]) == 1
    assert "connection 'nope' does not exist" in capsys.readouterr().err
    assert cli.main(["login", "--conn-id", NATIVE, "--port", "70000"]) == 1
    assert "must be 0-65535" in capsys.readouterr().err
    assert cli.main(["login", "--conn-id", NATIVE, "--redirect-uri", "https://example.com/cb"]) == 1
    assert "not a loopback redirect" in capsys.readouterr().err
    assert cli.main(["revoke", "--conn-id", NATIVE]) == 1
    assert "has no refresh token to revoke" in capsys.readouterr().err


def test_scope_the_client_lacks_is_reported(env: Any) -> None:
    env.state.register_client(
        client_id="native-library", profile="native", scopes=["api.rest.library.upload", "offline"]
    )
    _put_connection("spotfire_lib", host=env.url, login="native-library", password=None, extra={})
    with pytest.raises(LoginError, match=r"invalid_scope .*Register it with -S<scope>.*or pass --scopes"):
        run_login("spotfire_lib", open_url=Browser(), timeout=10)
    result = run_login("spotfire_lib", open_url=Browser(), scopes=["api.rest.library.upload"], timeout=10)
    assert result.scopes == ("api.rest.library.upload", "offline")


def test_transport_error_on_unreachable_server(env: Any) -> None:
    _put_connection(
        NATIVE,
        host=f"http://127.0.0.1:{_free_port()}",
        login="native-client",
        password=None,
        extra={"timeout": 2},
    )
    with pytest.raises(Exception, match="Could not reach Spotfire"):
        run_login(NATIVE, open_url=Browser(), timeout=1)


def test_refused_code_exchange_is_reported(env: Any) -> None:
    _put_connection(WEB, host=env.url, login="airflow-web", password="wrong-secret", extra={})
    with pytest.raises(LoginError, match="refused the authorization code: HTTP 401 invalid_client"):
        run_login(WEB, open_url=Browser(), port=env.web_port, timeout=10)


def test_no_metadata_falls_back_to_default_endpoints(env: Any) -> None:
    env.set_config(metadata_enabled=False)
    result = run_login(NATIVE, open_url=Browser(), timeout=10)
    assert result.saved and env.state.tokens[result.refresh_token].client_id == "native-client"


def test_tls_verify_setting_is_respected(airflow_db: Any) -> None:
    from airflow_provider_spotfire.emulator.server import EmulatorServer

    with EmulatorServer(tls=True) as tls:
        _put_connection("spotfire_tls", host=tls.url, login="native-client", password=None, extra={})
        with pytest.raises(SpotfireTLSError, match="TLS verification failed"):
            run_login("spotfire_tls", open_url=Browser(), timeout=5)
        extra = {"verify": tls.cert_path}
        _put_connection("spotfire_tls", host=tls.url, login="native-client", password=None, extra=extra)
        result = run_login("spotfire_tls", open_url=Browser(verify=tls.cert_path), timeout=5)
        assert result.saved and tls.state.tokens[result.refresh_token].client_id == "native-client"
        assert _extra("spotfire_tls")["verify"] == tls.cert_path  # other extras are kept
