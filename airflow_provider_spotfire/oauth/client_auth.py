"""OAuth2 client authentication (RFC 6749 2.3): the one place that puts id and secret on a request."""

from __future__ import annotations

import base64
from urllib.parse import quote

from airflow_provider_spotfire._connection import AUTH_BASIC, SpotfireConnectionConfig


def basic_authorization(client_id: str, client_secret: str) -> str:
    """``Basic`` header value; RFC 6749 2.3.1: id and secret are form-urlencoded before encoding."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def authenticate_client(
    config: SpotfireConnectionConfig, form: dict[str, str], headers: dict[str, str]
) -> None:
    """Add the client's credentials to a token or revocation request, in place.

    Confidential clients: HTTP Basic (default, what Spotfire documents) or ``client_secret_post``.
    Public (native) clients have no secret and identify themselves with ``client_id`` in the body.
    """
    if not config.client_secret:
        form["client_id"] = config.client_id
    elif config.token_auth_method == AUTH_BASIC:
        headers["Authorization"] = basic_authorization(config.client_id, config.client_secret)
    else:
        form["client_id"] = config.client_id
        form["client_secret"] = config.client_secret


__all__ = ["authenticate_client", "basic_authorization"]
