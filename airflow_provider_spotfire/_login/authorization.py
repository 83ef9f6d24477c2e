"""The authorization request and response of ``airflow-spotfire login`` (RFC 6749 4.1, RFC 7636, RFC 9207)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._login.errors import LoginError
from airflow_provider_spotfire.api.scopes import ALL_API_SCOPES, OFFLINE
from airflow_provider_spotfire.oauth.discovery import ServerEndpoints


@dataclass(frozen=True)
class AuthorizationRequest:
    """One sign-in attempt: its URL, and the state and PKCE verifier that must come back (secrets)."""

    url: str
    redirect_uri: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


def authorization_request(
    config: SpotfireConnectionConfig, endpoints: ServerEndpoints, redirect_uri: str, scopes: Sequence[str]
) -> AuthorizationRequest:
    """The authorization URL with a random ``state`` and a PKCE S256 challenge."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]: RFC 7636 4.1
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    base = endpoints.authorization_endpoint
    url = base + ("&" if "?" in base else "?") + query
    return AuthorizationRequest(url, redirect_uri, state, verifier)


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise LoginError(
            f"The authorization response repeats the parameter {name!r}; nothing was stored. Run login again."
        )
    return values[0]


AUTHZ_ADVICE = {
    "access_denied": "The user denied the request, or may not use this API client. Sign in as a user "
    "who may, and approve the request.",
    "invalid_scope": "The API client is not registered for all requested scopes. Register it with "
    "-S<scope> for each API scope and -Soffline, or pass --scopes with the scopes it has.",
    "unauthorized_client": "The API client may not use the authorization code grant: register it with "
    "--client-profile=web or native and -Gauthorization_code -Grefresh_token (profile 'other' "
    "clients use client_credentials and need no login).",
    "invalid_request": "Check the client registration: native clients accept "
    "http://127.0.0.1:<any port>/auth; web clients need the exact redirect URI registered (use "
    "--port or --redirect-uri to match it).",
    "unsupported_response_type": "The server does not accept response_type=code for this client.",
    "server_error": "The Spotfire Server failed; see its logs and try again.",
    "temporarily_unavailable": "The Spotfire Server is busy; try again later.",
}


def check_authorization_response(
    params: dict[str, list[str]], *, expected_state: str, endpoints: ServerEndpoints
) -> str:
    """Validate a redirect's query parameters (state, RFC 9207 iss, error) and return the code."""
    state = _first(params, "state")
    if state is None or not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise LoginError(
            "The authorization response does not carry the state of this login (a stale browser tab, or a "
            "forged redirect); nothing was stored. Run login again and finish it in the browser it opens."
        )
    iss = _first(params, "iss")
    if endpoints.issuer and (endpoints.iss_parameter_supported or iss is not None):
        if iss is None:
            raise LoginError(
                "The authorization response has no iss parameter although the server advertises it "
                "(RFC 9207); it may come from another authorization server (mix-up attack). Nothing was "
                "stored. Check the connection host and run login again."
            )
        if iss != endpoints.issuer:
            raise LoginError(
                f"The authorization response comes from issuer {iss!r}, not {endpoints.issuer!r} (RFC 9207): "
                "possible mix-up attack or proxy misconfiguration. Nothing was stored. Check that the "
                "connection host is the Spotfire Server's public URL."
            )
    error = _first(params, "error")
    if error is not None:
        description = _first(params, "error_description")
        text = f"Spotfire refused the authorization: {error}" + (
            f" ({description.rstrip('.')})" if description else ""
        )
        raise LoginError(text + ". " + AUTHZ_ADVICE.get(error, "Fix the cause and run login again."))
    code = _first(params, "code")
    if not code:
        raise LoginError("The authorization response has neither code nor error; run login again.")
    return code


def requested_scopes(config: SpotfireConnectionConfig, scopes: Sequence[str] | None) -> list[str]:
    chosen = [s for s in (scopes or config.scopes_override or ALL_API_SCOPES) if s]
    out: list[str] = []
    for s in [*chosen, OFFLINE]:
        if any(c.isspace() or c in '"\\' for c in s):
            raise LoginError(f'Invalid scope {s!r}: scopes are separated by spaces, e.g. --scopes "a b".')
        if s not in out:
            out.append(s)
    return out
