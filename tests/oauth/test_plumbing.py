"""The OAuth building blocks on their own: client authentication, discovery, token responses, the record."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from urllib.parse import parse_qs

import pytest

from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire.exceptions import SpotfireAuthenticationError, SpotfireConfigurationError
from airflow_provider_spotfire.oauth.discovery import endpoints_from_metadata
from airflow_provider_spotfire.oauth.grants import (
    ALL_GRANTED,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    grant_for,
)
from airflow_provider_spotfire.oauth.store import StoredGrant, as_stored_grant, fingerprint
from airflow_provider_spotfire.oauth.token import parse_token_response, revocation_request, token_request
from tests.oauth.fakes import CONFIG


def _json(status: int, body: object) -> HttpResponse:
    return HttpResponse(status, {}, json.dumps(body).encode())


def _form(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.form).items()}


def test_confidential_clients_use_basic_with_form_encoded_credentials():
    config = replace(CONFIG, client_id="a b", client_secret="p:w&d")
    request = token_request(config, "https://x/token", {"grant_type": "client_credentials"})
    raw = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert raw == "a%20b:p%3Aw%26d"  # RFC 6749 2.3.1
    assert _form(request) == {"grant_type": "client_credentials"}


def test_client_secret_post_and_public_clients_identify_themselves_in_the_body():
    post = token_request(replace(CONFIG, token_auth_method="client_secret_post"), "https://x/t", {"a": "1"})
    assert _form(post) == {"a": "1", "client_id": "web-client", "client_secret": "web-secret"}
    assert "Authorization" not in post.headers
    public = revocation_request(replace(CONFIG, client_secret=None), "https://x/revoke", "rt")
    assert _form(public) == {"token": "rt", "token_type_hint": "refresh_token", "client_id": "web-client"}


def test_grant_strategies_say_what_they_send_and_how_they_cache():
    refresh = grant_for(CONFIG)
    assert isinstance(refresh, RefreshTokenGrant) and refresh.shared and not refresh.idempotent
    assert refresh.cache_key(CONFIG, ("a",)) == ALL_GRANTED
    assert refresh.form_fields(ALL_GRANTED, refresh_token="rt") == {
        "grant_type": "refresh_token",
        "refresh_token": "rt",
    }
    client = ClientCredentialsGrant()
    assert client.idempotent and not client.shared
    assert client.form_fields(frozenset({"b", "a"})) == {"grant_type": "client_credentials", "scope": "a b"}
    with pytest.raises(SpotfireConfigurationError, match="airflow-spotfire login --conn-id sf_user"):
        grant_for(replace(CONFIG, refresh_token=None))


def test_discovery_takes_metadata_endpoints_and_refuses_plain_http_behind_https():
    meta = {"issuer": "https://spotfire.test/spotfire", "token_endpoint": "https://spotfire.test/t"}
    endpoints = endpoints_from_metadata(CONFIG, _json(200, meta))
    assert endpoints.token_endpoint == "https://spotfire.test/t" and endpoints.from_metadata
    assert endpoints.revocation_endpoint == "https://spotfire.test/spotfire/oauth2/revoke"
    assert endpoints_from_metadata(CONFIG, None).token_endpoint == CONFIG.default_token_url
    assert endpoints_from_metadata(CONFIG, _json(200, ["not", "a", "dict"])).from_metadata is False
    with pytest.raises(SpotfireConfigurationError, match="plain-http token_endpoint"):
        endpoints_from_metadata(CONFIG, _json(200, {"token_endpoint": "http://spotfire.test/t"}))


def test_token_responses_are_read_forgivingly_and_refused_clearly():
    parsed = parse_token_response(
        _json(200, {"access_token": "at", "token_type": "bearer", "expires_in": "30", "scope": ["a", "b"]}),
        path="/t",
    )
    assert (parsed.expires_in, parsed.scopes, parsed.refresh_token) == (30.0, frozenset({"a", "b"}), None)
    assert "'at'" not in repr(parsed)
    assert (
        parse_token_response(_json(200, {"access_token": "at", "expires_in": "soon"}), path="/t").expires_in
        == 3600
    )
    with pytest.raises(SpotfireAuthenticationError, match="without an access_token"):
        parse_token_response(HttpResponse(200, {}, b"<html>"), path="/t")
    with pytest.raises(SpotfireAuthenticationError, match="only bearer tokens"):
        parse_token_response(_json(200, {"access_token": "at", "token_type": "mac"}), path="/t")


def test_the_shared_record_round_trips_and_reads_the_old_format():
    grant = StoredGrant(
        refresh_token="rt-secret", access_token="at-secret", expires_at=5.0, lifetime=4.0, scopes=("a",)
    )
    text = grant.to_json(fingerprint("origin"))
    assert StoredGrant.from_json(text) == (grant, fingerprint("origin"))
    assert "-secret" not in repr(grant)
    old = json.dumps({"refresh_token": "rt-old", "origin": "abc"})  # written by 0.x versions
    assert StoredGrant.from_json(old) == (StoredGrant(refresh_token="rt-old"), "abc")
    assert StoredGrant.from_json("not json") is None and StoredGrant.from_json('{"expires_at": "x"}') is None
    assert as_stored_grant("rt-legacy-store") == StoredGrant(refresh_token="rt-legacy-store")
