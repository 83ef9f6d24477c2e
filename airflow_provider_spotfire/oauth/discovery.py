"""Authorization server endpoints: RFC 8414 metadata, else Spotfire's documented default paths."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import HttpRequest, HttpResponse
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerEndpoints:
    """Authorization server endpoints (RFC 8414 metadata, or Spotfire's documented defaults)."""

    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    issuer: str | None = None
    iss_parameter_supported: bool = False
    from_metadata: bool = False


def default_endpoints(config: SpotfireConnectionConfig) -> ServerEndpoints:
    """The paths Spotfire documents under the context path."""
    return ServerEndpoints(
        authorization_endpoint=config.server_url + "/oauth2/auth",
        token_endpoint=config.default_token_url,
        revocation_endpoint=config.server_url + "/oauth2/revoke",
    )


def metadata_request(config: SpotfireConnectionConfig) -> HttpRequest:
    """GET of the RFC 8414 metadata document (Spotfire serves it under the context path)."""
    return HttpRequest("GET", config.metadata_url, headers={"Accept": "application/json"})


def endpoints_from_metadata(
    config: SpotfireConnectionConfig, response: HttpResponse | None
) -> ServerEndpoints:
    """Endpoints named by a metadata response; defaults for whatever it does not name.

    ``response`` is ``None`` when the server has no metadata (404 or other error). Endpoints that
    are not absolute http(s) URLs are ignored; a plain-http endpoint behind an https connection is
    refused, because the client secret and tokens would travel unencrypted.
    """
    defaults = default_endpoints(config)
    body: Any = None
    if response is not None and response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
    if not isinstance(body, dict):
        log.info("No OAuth2 metadata at %s; using the default endpoints.", config.metadata_url)
        return defaults

    def url(key: str, default: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            return default
        if value.startswith("http://") and config.base_url.startswith("https://"):
            raise SpotfireConfigurationError(
                f"The server's OAuth2 metadata names a plain-http {key} ({value}) although the connection "
                "uses https; refusing to send credentials over http. Fix the server's public URL "
                "configuration (or the connection host)."
            )
        return value

    issuer = body.get("issuer")
    return ServerEndpoints(
        authorization_endpoint=url("authorization_endpoint", defaults.authorization_endpoint),
        token_endpoint=url("token_endpoint", defaults.token_endpoint),
        revocation_endpoint=url("revocation_endpoint", defaults.revocation_endpoint),
        issuer=issuer if isinstance(issuer, str) and issuer else None,
        iss_parameter_supported=body.get("authorization_response_iss_parameter_supported") is True,
        from_metadata=True,
    )


__all__ = ["ServerEndpoints", "default_endpoints", "endpoints_from_metadata", "metadata_request"]
