"""Access tokens, and token requests and responses (RFC 6749 4.x, 5.1, 5.2; RFC 7009)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import HttpRequest, HttpResponse
from airflow_provider_spotfire.exceptions import SpotfireAuthenticationError
from airflow_provider_spotfire.oauth.client_auth import authenticate_client

# A token without expires_in is used until the server rejects it, but never longer than this.
DEFAULT_LIFETIME = 3600.0


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it (monotonic clock)."""

    access_token: str = field(repr=False)
    scopes: frozenset[str]
    expires_at: float
    lifetime: float

    def usable(self, now: float | None = None) -> bool:
        """False once inside the renewal margin: 10% of the lifetime, at least 1 s, at most 60 s."""
        return (time.monotonic() if now is None else now) < self.expires_at - renewal_margin(self.lifetime)


def renewal_margin(lifetime: float) -> float:
    """Seconds before expiry at which a token is renewed."""
    return min(60.0, max(1.0, 0.1 * lifetime))


@dataclass(frozen=True)
class TokenResponse:
    """What a 2xx token response said (the secrets are kept out of ``repr``)."""

    access_token: str = field(repr=False)
    expires_in: float
    scopes: frozenset[str] | None
    refresh_token: str | None = field(default=None, repr=False)


def token_request(config: SpotfireConnectionConfig, endpoint: str, fields: dict[str, str]) -> HttpRequest:
    """POST of ``fields`` to the token endpoint with the client's authentication."""
    return _client_post(config, endpoint, fields)


def revocation_request(config: SpotfireConnectionConfig, endpoint: str, refresh_token: str) -> HttpRequest:
    """RFC 7009 revocation of a refresh token, authenticated like a token request."""
    return _client_post(config, endpoint, {"token": refresh_token, "token_type_hint": "refresh_token"})


def _client_post(config: SpotfireConnectionConfig, endpoint: str, fields: dict[str, str]) -> HttpRequest:
    form = dict(fields)
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    authenticate_client(config, form, headers)
    return HttpRequest("POST", endpoint, headers=headers, form=urlencode(form))


def parse_token_response(response: HttpResponse, *, path: str) -> TokenResponse:
    """Read a 2xx token response forgivingly (string numbers, list or space-separated scope)."""
    try:
        data = json.loads(response.content or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("access_token"):
        raise SpotfireAuthenticationError(
            f"The token endpoint answered {response.status_code} without an access_token; check that "
            "the connection host is a Spotfire Server.",
            status_code=response.status_code,
            method="POST",
            path=path,
        )
    token_type = str(data.get("token_type") or "bearer")
    if token_type.lower() != "bearer":
        raise SpotfireAuthenticationError(
            f"The token endpoint issued a {token_type!r} token; only bearer tokens (RFC 6750) are supported.",
            status_code=response.status_code,
            method="POST",
            path=path,
        )
    try:
        lifetime = float(data.get("expires_in") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME
    granted = data.get("scope")
    scopes = frozenset(granted if isinstance(granted, list) else str(granted or "").split()) or None
    refresh = data.get("refresh_token")
    return TokenResponse(
        str(data["access_token"]), max(0.0, lifetime), scopes, str(refresh) if refresh else None
    )


__all__ = [
    "DEFAULT_LIFETIME",
    "Token",
    "TokenResponse",
    "parse_token_response",
    "renewal_margin",
    "revocation_request",
    "token_request",
]
