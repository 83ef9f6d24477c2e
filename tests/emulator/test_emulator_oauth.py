"""OAuth2 behaviour of the emulator: metadata, grants, client authentication, PKCE, errors, revocation."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest

from airflow_provider_spotfire.emulator import seed

from .conftest import AS_JOB, LICENSES, TOKEN_PATH, authorize, redirect_params, web_login

AUTH = "/spotfire/oauth2/auth"
REVOKE = "/spotfire/oauth2/revoke"
ALL = " ".join(seed.ALL_SCOPES)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_metadata(emu, http):
    meta = http.get("/spotfire/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == f"{emu.url}/spotfire"
    assert meta["token_endpoint"] == f"{emu.url}/spotfire/oauth2/token"
    assert meta["authorization_endpoint"] == f"{emu.url}/spotfire/oauth2/auth"
    assert meta["revocation_endpoint"] == f"{emu.url}/spotfire/oauth2/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert set(meta["grant_types_supported"]) == {"authorization_code", "client_credentials", "refresh_token"}
    assert {"client_secret_basic", "client_secret_post"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert set(seed.API_SCOPES) <= set(meta["scopes_supported"])
    assert meta["response_types_supported"] == ["code"]
    emu.set_config(metadata_enabled=False)
    assert http.get("/spotfire/.well-known/oauth-authorization-server").status_code == 404


def test_client_credentials_basic(emu, http):
    resp = http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("airflow", "airflow-secret")
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body["scope"].split()) == set(seed.API_SCOPES)
    assert "refresh_token" not in body
    assert resp.headers["cache-control"] == "no-store"
    counters = emu.inspect()["counters"]
    assert counters["token_requests"]["airflow"] == 1
    assert counters["tokens_issued"]["airflow"] == 1


def test_client_secret_post_only_where_registered(http):
    form = {"grant_type": "client_credentials", "client_id": "post-auth", "client_secret": "post-auth-secret"}
    assert http.post(TOKEN_PATH, data=form).status_code == 200
    # post-auth may not use Basic, airflow may not use the form body
    basic = http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("post-auth", "post-auth-secret")
    )
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    form = {"grant_type": "client_credentials", "client_id": "airflow", "client_secret": "airflow-secret"}
    resp = http.post(TOKEN_PATH, data=form)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("auth", "desc"),
    [(("airflow", "wrong"), "bad secret"), (("nobody", "x"), "unknown client"), (None, "no credentials")],
)
def test_invalid_client(http, auth, desc):
    resp = http.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=auth)
    assert resp.status_code == 401, desc
    assert resp.json()["error"] == "invalid_client"
    assert "error_description" in resp.json()
    assert resp.headers["www-authenticate"].startswith("Basic")


def test_token_request_errors(http):
    creds = ("airflow", "airflow-secret")
    resp = http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials", "scope": "api.licenses.read bogus"}, auth=creds
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    resp = http.post(
        TOKEN_PATH,
        data={"grant_type": "client_credentials", "scope": seed.SCOPE_LICENSES_READ},
        auth=("library-only", "library-only-secret"),
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    assert seed.SCOPE_LICENSES_READ in resp.json()["error_description"]
    resp = http.post(TOKEN_PATH, data={"grant_type": "authorization_code", "code": "x"}, auth=creds)
    assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"
    resp = http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("web-client", "web-client-secret")
    )
    assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"
    resp = http.post(
        TOKEN_PATH, data={"grant_type": "password", "username": "a", "password": "b"}, auth=creds
    )
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported_grant_type"
    resp = http.post(TOKEN_PATH, data={}, auth=creds)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    resp = http.post(TOKEN_PATH, json={"grant_type": "client_credentials"}, auth=creds)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_scoped_token_and_api_auth_errors(emu, http, api, token_for):
    tok = token_for("airflow", scope=seed.SCOPE_LIBRARY_UPLOAD)
    client = api(token=tok)
    # insufficient scope -> 403 with RFC 6750 challenge naming the scope
    resp = client.get(f"{AS_JOB}/status/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 403
    challenge = resp.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{seed.SCOPE_AS_EXECUTE}"' in challenge
    assert resp.json()["error"]["code"] == "not_authorized"
    assert seed.SCOPE_AS_EXECUTE in resp.json()["error"]["description"]
    # missing token -> 401 without error code (RFC 6750 §3.1)
    resp = http.get(LICENSES)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "not_authenticated"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    # unknown token
    resp = http.get(LICENSES, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_token_lifetime_and_expiry(emu, http, api):
    emu.set_config(token_lifetime=120)
    client = api("airflow")
    assert client.get(LICENSES).status_code == 200
    resp = http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("airflow", "airflow-secret")
    )
    assert resp.json()["expires_in"] == 120
    emu.advance_clock(121)
    resp = client.get(LICENSES)
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    assert resp.json()["error"]["code"] == "not_authenticated"
    assert "expired" in resp.json()["error"]["description"]


def test_native_pkce_authorization_code_flow(emu, http):
    verifier, challenge = pkce()
    redirect = "http://127.0.0.1:53682/"
    resp = authorize(
        http,
        client_id="native-client",
        redirect_uri=redirect,
        scope=f"{seed.SCOPE_LIBRARY_UPLOAD} offline",
        state="xyz",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    base, params = redirect_params(resp)
    assert base == redirect
    assert params["state"] == "xyz"
    assert params["iss"] == f"{emu.url}/spotfire"
    form = {
        "grant_type": "authorization_code",
        "client_id": "native-client",
        "code": params["code"],
        "redirect_uri": redirect,
        "code_verifier": verifier,
    }
    tok = http.post(TOKEN_PATH, data=form)
    assert tok.status_code == 200, tok.text
    body = tok.json()
    assert body["refresh_token"]
    assert set(body["scope"].split()) == {seed.SCOPE_LIBRARY_UPLOAD, "offline"}
    # the code is single use
    again = http.post(TOKEN_PATH, data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_pkce_wrong_verifier_rejected(http):
    _, challenge = pkce()
    redirect = "http://[::1]:8765/auth"
    resp = authorize(
        http,
        client_id="native-client",
        redirect_uri=redirect,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    _, params = redirect_params(resp)
    form = {
        "grant_type": "authorization_code",
        "client_id": "native-client",
        "code": params["code"],
        "redirect_uri": redirect,
        "code_verifier": pkce()[0],
    }
    resp = http.post(TOKEN_PATH, data=form)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_authorize_errors(http):
    _, challenge = pkce()
    # public client without PKCE -> error redirect
    _, params = redirect_params(
        authorize(http, client_id="native-client", redirect_uri="http://127.0.0.1:1/")
    )
    assert params["error"] == "invalid_request" and "PKCE" in params["error_description"]
    # plain PKCE not supported
    _, params = redirect_params(
        authorize(
            http, client_id="native-client", redirect_uri="http://127.0.0.1:1/", code_challenge=challenge
        )
    )
    assert params["error"] == "invalid_request"
    # invalid loopback path / host / unregistered redirect -> 400 page, no redirect
    for bad in (
        "http://127.0.0.1:1/other",
        "http://localhost:1/",
        "https://127.0.0.1:1/",
        "https://evil.example/",
    ):
        resp = authorize(http, client_id="native-client", redirect_uri=bad, code_challenge=challenge)
        assert resp.status_code == 400, bad
    # web clients: registered redirect URIs only (no loopback)
    resp = authorize(http, client_id="web-client", redirect_uri="http://127.0.0.1:1/")
    assert resp.status_code == 400
    assert authorize(http, client_id="unknown", redirect_uri="http://127.0.0.1:1/").status_code == 400
    _, params = redirect_params(
        authorize(
            http, client_id="web-client", redirect_uri=seed.WEB_CLIENT_REDIRECT_URI, scope="bogus", state="s"
        )
    )
    assert params["error"] == "invalid_scope" and params["state"] == "s" and params["iss"]
    _, params = redirect_params(
        http.get(AUTH, params={"response_type": "token", "client_id": "web-client"})
    )  # single registered redirect URI is used when omitted
    assert params["error"] == "unsupported_response_type"


def test_authorize_denied(emu, http):
    emu.set_config(authorize_deny=True)
    _, params = redirect_params(authorize(http, client_id="web-client", state="a"))
    assert params["error"] == "access_denied" and params["state"] == "a"


def test_web_client_refresh_rotation(emu, http):
    first = web_login(http)
    assert "refresh_token" in first
    creds = ("web-client", "web-client-secret")
    r1 = http.post(
        TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=creds
    )
    assert r1.status_code == 200
    assert r1.json()["refresh_token"] != first["refresh_token"]
    # the rotated-out refresh token no longer works
    old = http.post(
        TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=creds
    )
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    # narrowing the scope is allowed, widening is not
    narrow = http.post(
        TOKEN_PATH,
        data={
            "grant_type": "refresh_token",
            "refresh_token": r1.json()["refresh_token"],
            "scope": seed.SCOPE_LICENSES_READ,
        },
        auth=creds,
    )
    assert narrow.status_code == 200 and narrow.json()["scope"] == seed.SCOPE_LICENSES_READ
    no_offline = web_login(http, scope=seed.SCOPE_LICENSES_READ)
    assert "refresh_token" not in no_offline
    emu.set_config(rotate_refresh_tokens=False)
    second = web_login(http)
    for _ in range(2):
        resp = http.post(
            TOKEN_PATH,
            data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
            auth=creds,
        )
        assert resp.status_code == 200 and resp.json()["refresh_token"] == second["refresh_token"]


def test_revocation(emu, http, api):
    creds = ("web-client", "web-client-secret")
    tokens = web_login(http)
    client = api(token=tokens["access_token"])
    assert client.get(LICENSES).status_code == 200
    assert http.post(REVOKE, data={"token": "unknown-token"}, auth=creds).status_code == 200
    resp = http.post(
        REVOKE, data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}, auth=creds
    )
    assert resp.status_code == 200
    # revoking the refresh token also revokes the access tokens of the same grant
    assert client.get(LICENSES).status_code == 401
    resp = http.post(
        TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=creds
    )
    assert resp.json()["error"] == "invalid_grant"
    assert http.post(REVOKE, data={"token": "x"}, auth=("web-client", "bad")).status_code == 401
    # access-token revocation by a client-credentials client
    tok = http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("airflow", "airflow-secret")
    ).json()
    assert (
        http.post(REVOKE, data={"token": tok["access_token"]}, auth=("airflow", "airflow-secret")).status_code
        == 200
    )
    assert api(token=tok["access_token"]).get(LICENSES).status_code == 401


def test_token_endpoint_basic_credentials_are_form_decoded(emu, http):
    """RFC 6749 §2.3.1: client id and secret are application/x-www-form-urlencoded before Basic encoding."""
    resp = http.post(
        "/_emulator/clients",
        json={"client_id": "weird id", "client_secret": "s3cr:t+&", "scopes": [seed.SCOPE_LICENSES_READ]},
    )
    assert resp.status_code == 201, resp.text
    raw = base64.b64encode(b"weird+id:s3cr%3At%2B%26").decode()
    resp = http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {raw}"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == seed.SCOPE_LICENSES_READ


def test_register_client_profile_rules(http):
    bad = http.post(
        "/_emulator/clients",
        json={"client_id": "x", "profile": "other", "grant_types": ["authorization_code"]},
    )
    assert bad.status_code == 400
    bad = http.post("/_emulator/clients", json={"client_id": "y", "profile": "native", "client_secret": "s"})
    assert bad.status_code == 400
    ok = http.post(
        "/_emulator/clients", json={"client_id": "z", "profile": "other", "groups": ["Administrator"]}
    )
    assert ok.status_code == 201 and ok.json()["client_secret"]
