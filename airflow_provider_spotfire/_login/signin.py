"""``airflow-spotfire login``: sign in in a browser, store the refresh token in the connection.

The authorization code flow with PKCE S256 (RFC 6749 4.1, RFC 7636) with a one-shot loopback
redirect (RFC 8252 7.3), checking ``state`` and ``iss`` (RFC 9207). Discovery, client
authentication and the token request are the ones the hooks use (:mod:`airflow_provider_spotfire.oauth`).
Nothing here prints or logs a client secret, code, verifier or token.
"""

from __future__ import annotations

import json
import sys
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import SyncTransport
from airflow_provider_spotfire._login.authorization import (
    AUTHZ_ADVICE,
    AuthorizationRequest,
    authorization_request,
    check_authorization_response,
    requested_scopes,
)
from airflow_provider_spotfire._login.callback import CallbackServer, redirect_target
from airflow_provider_spotfire._login.connection import (
    LocatedConnection,
    locate,
    login_config,
    update_db_extra,
    with_token,
)
from airflow_provider_spotfire._login.errors import LoginError, reason
from airflow_provider_spotfire._login.transport import discover, open_transport
from airflow_provider_spotfire._secrets import mask
from airflow_provider_spotfire.exceptions import SpotfireApiError
from airflow_provider_spotfire.oauth.discovery import ServerEndpoints
from airflow_provider_spotfire.oauth.grants import AuthorizationCodeGrant
from airflow_provider_spotfire.oauth.token import TokenResponse, parse_token_response, token_request

DEFAULT_TIMEOUT = 300.0

_EXCHANGE_ADVICE = {
    "invalid_client": "Check the client id (Login) and, for web clients, the client secret "
    "(Password); native clients have no secret, so leave Password empty.",
    "invalid_grant": "The code expired or was already used; run login again and finish it promptly.",
    "unauthorized_client": AUTHZ_ADVICE["unauthorized_client"],
}


@dataclass(frozen=True)
class LoginResult:
    """Outcome of :func:`run_login` (the token is kept out of ``repr``)."""

    conn_id: str
    client_id: str
    scopes: tuple[str, ...]
    redirect_uri: str
    saved: bool
    location: str
    extra: dict[str, Any] = field(repr=False)

    @property
    def refresh_token(self) -> str:
        """The new refresh token (a secret)."""
        return str(self.extra["refresh_token"])

    def extra_json(self) -> str:
        """The connection extra with the new refresh token, as JSON (contains a secret)."""
        return json.dumps(self.extra, sort_keys=True)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def exchange_code(
    transport: SyncTransport,
    config: SpotfireConnectionConfig,
    endpoints: ServerEndpoints,
    request: AuthorizationRequest,
    code: str,
) -> TokenResponse:
    """Redeem the authorization code (with the PKCE verifier) at the token endpoint, once."""
    grant = AuthorizationCodeGrant()
    fields = grant.form_fields(
        frozenset(), code=code, redirect_uri=request.redirect_uri, code_verifier=request.code_verifier
    )
    http_request = token_request(config, endpoints.token_endpoint, fields)
    try:
        response = transport.send(http_request, idempotent=grant.idempotent)
    except SpotfireApiError as exc:
        advice = _EXCHANGE_ADVICE.get(exc.code or "", "Fix the cause and run login again.")
        raise LoginError(
            f"The token endpoint refused the authorization code: {reason(exc)}. {advice}"
        ) from None
    return parse_token_response(response, path=http_request.path)


def _refuse_outside_db(conn_id: str, where: str) -> LoginError:
    return LoginError(
        f"Connection {conn_id!r} is defined by {where}, which this command cannot update "
        "(and which takes precedence over the metadata DB). Either move the connection to the metadata "
        f"DB (`airflow connections add {conn_id} ...`, then remove it from {where}), or rerun "
        "with --print-extra, which prints the connection extra including the new refresh token (a "
        f"secret!), and store that extra in {where} yourself."
    )


def _browser_sign_in(
    transport: SyncTransport,
    config: SpotfireConnectionConfig,
    scopes: list[str],
    target: tuple[str, str, int, str],
    timeout: float,
    open_url: Callable[[str], object] | None,
    echo: Callable[[str], None],
    fixed_uri: str | None,
) -> tuple[TokenResponse, str]:
    """Open the browser, wait for the redirect, check it and redeem the code: (token, redirect URI)."""
    template, host, bind_port, path = target
    endpoints = discover(config, transport)
    with CallbackServer(host, bind_port, path) as receiver:
        uri = fixed_uri or template.format(port=receiver.port)
        request = authorization_request(config, endpoints, uri, scopes)
        echo(
            f"Sign in to Spotfire at {config.server_url} as the user the Airflow tasks should act for "
            f"(client {config.client_id!r}, scopes: {' '.join(scopes)}). Waiting up to "
            f"{timeout:g} s for the browser to come back to {uri} ..."
        )
        if open_url is None:
            if not webbrowser.open(request.url):
                echo(f"Could not start a browser; open this URL yourself:\n{request.url}")
        else:
            open_url(request.url)
        if not receiver.received.wait(timeout):
            raise LoginError(
                f"No browser redirect arrived at {uri} within {timeout:g} s. Finish the sign-in in the "
                "browser, or, if it shows a Spotfire error page (e.g. invalid redirect_uri), fix the "
                "client registration: native clients accept http://127.0.0.1:<any port>/auth, web "
                "clients need the redirect URI registered exactly (match it with --port/--redirect-uri)."
            )
        params = receiver.params or {}
    code = check_authorization_response(params, expected_state=request.state, endpoints=endpoints)
    mask(code)
    return exchange_code(transport, config, endpoints, request, code), uri


def run_login(
    conn_id: str,
    *,
    open_url: Callable[[str], object] | None = None,
    scopes: Sequence[str] | None = None,
    port: int = 0,
    redirect_uri: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    allow_outside_db: bool = False,
    echo: Callable[[str], None] = _stderr,
) -> LoginResult:
    """Sign in at Spotfire in a browser and store the refresh token in connection ``conn_id``.

    :param open_url: shows the authorization URL to the user (default: :func:`webbrowser.open`,
        printing the URL when no browser can be started). Tests pass a function playing the browser.
    :param scopes: API scopes to request (default: the connection's ``scopes`` extra, else all four);
        ``offline`` is always added so that Spotfire issues a refresh token.
    :param port: loopback port for the redirect (0 = a free port; web clients need the registered one).
    :param redirect_uri: an explicit loopback redirect URI instead of ``http://127.0.0.1:<port>/auth``.
    :param timeout: seconds to wait for the browser to come back.
    :param allow_outside_db: for connections defined outside the metadata DB (env var, secrets
        backend): run the flow anyway and only return the extra (``--print-extra``).
    :param echo: where progress messages go (never secrets).
    """
    if timeout <= 0:
        raise LoginError(f"--timeout must be a positive number of seconds, got {timeout}.")
    if port and redirect_uri:
        raise LoginError("Use either --port or --redirect-uri, not both (the URI already names the port).")
    located = locate(conn_id)
    if not located.in_metadata_db and not allow_outside_db:
        raise _refuse_outside_db(conn_id, located.where)
    config = login_config(located, conn_id)
    requested = requested_scopes(config, scopes)
    target = redirect_target(port, redirect_uri)
    transport = open_transport(config)
    try:
        token, uri = _browser_sign_in(
            transport, config, requested, target, timeout, open_url, echo, redirect_uri
        )
    finally:
        transport.close()
    return _store(located, config, token, tuple(requested), uri)


def _store(
    located: LocatedConnection,
    config: SpotfireConnectionConfig,
    token: TokenResponse,
    requested: tuple[str, ...],
    uri: str,
) -> LoginResult:
    """Put the new refresh token in the connection (metadata DB only) and describe the result."""
    if not token.refresh_token:
        raise LoginError(
            f"Spotfire signed the user in but issued no refresh token. Register client {config.client_id!r} "
            "with -Grefresh_token and the scope -Soffline (and keep offline among the requested scopes)."
        )
    refresh_token = token.refresh_token
    mask(refresh_token)
    mask(token.access_token)
    extra = with_token(located.extra(), refresh_token)
    if located.in_metadata_db:
        update_db_extra(config.conn_id, lambda current: with_token(current, refresh_token))
    return LoginResult(
        conn_id=config.conn_id,
        client_id=config.client_id,
        scopes=tuple(sorted(token.scopes)) if token.scopes else requested,
        redirect_uri=uri,
        saved=located.in_metadata_db,
        location=located.where,
        extra=extra,
    )
