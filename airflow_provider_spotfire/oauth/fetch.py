"""One token request as a sans-IO flow: discover the token endpoint once, ask, parse, mask."""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow_provider_spotfire._connection import SpotfireConnectionConfig, token_endpoint_not_found
from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire.exceptions import SpotfireApiError
from airflow_provider_spotfire.oauth.discovery import (
    ServerEndpoints,
    endpoints_from_metadata,
    metadata_request,
)
from airflow_provider_spotfire.oauth.effects import Flow, MaskSecret, Send
from airflow_provider_spotfire.oauth.grants import Grant
from airflow_provider_spotfire.oauth.grants.refresh_token import ALL_GRANTED
from airflow_provider_spotfire.oauth.token import TokenResponse, parse_token_response, token_request


def discover_flow(config: SpotfireConnectionConfig) -> Flow[ServerEndpoints]:
    """RFC 8414 metadata when the server offers it; Spotfire's default paths when it answers an error."""
    try:
        meta: HttpResponse | None = yield Send(metadata_request(config), idempotent=True)
    except SpotfireApiError:
        meta = None
    return endpoints_from_metadata(config, meta)


class TokenEndpoint:
    """The token endpoint of one server, discovered on first use, and the requests sent to it."""

    def __init__(self, config: SpotfireConnectionConfig, grant: Grant) -> None:
        self.config = config
        self.grant = grant
        self.url: str | None = None
        self.requests = 0  # token requests answered with a token

    @property
    def path(self) -> str:
        return urlsplit(self.url or self.config.default_token_url).path

    def request_flow(self, key: frozenset[str], *, once: bool = False, **inputs: str) -> Flow[TokenResponse]:
        """Ask for a token of ``key`` with the grant's form fields; mask what comes back."""
        if self.url is None:
            self.url = (yield from discover_flow(self.config)).token_endpoint
        request = token_request(self.config, self.url, self.grant.form_fields(key, **inputs))
        try:
            response = yield Send(request, idempotent=self.grant.idempotent, once=once)
        except SpotfireApiError as exc:
            if exc.status_code == 404:  # wrong host/port/context path: not a Spotfire Server
                raise token_endpoint_not_found(self.config, self.path) from None
            if exc.code == "invalid_scope" and key != ALL_GRANTED:
                exc.args = (f"{exc.args[0]} Requested scope(s): {' '.join(sorted(key))}.",)
            raise
        result = parse_token_response(response, path=self.path)
        self.requests += 1
        yield MaskSecret(result.access_token)
        if result.refresh_token:
            yield MaskSecret(result.refresh_token)
        return result


__all__ = ["TokenEndpoint", "discover_flow"]
