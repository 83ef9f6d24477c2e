"""Bootstrap (``login``) and retire (``revoke``) the refresh token of a ``spotfire`` connection.

``login`` runs the OAuth 2.0 authorization code flow with PKCE S256 (RFC 6749 4.1, RFC 7636)
through requests-oauthlib, receives the redirect on a one-shot loopback HTTP server
(RFC 8252 7.3), checks ``state`` and ``iss`` (RFC 9207), and stores the refresh token in the
Airflow connection in the metadata DB. ``revoke`` revokes it at the server (RFC 7009) and removes
it from the connection and from the rotated-token Variable.

Nothing in this module prints or logs a client secret, code, verifier or token.
"""

from __future__ import annotations

import base64
import contextlib
import html
import http.server
import json
import logging
import os
import secrets
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests_oauthlib import OAuth2Session

from airflow_provider_spotfire._connection import GRANT_REFRESH_TOKEN, SpotfireConnectionConfig
from airflow_provider_spotfire._http import USER_AGENT, HttpResponse, raise_for_response, transport_error
from airflow_provider_spotfire._secrets import mask
from airflow_provider_spotfire._tokens import VariableRefreshTokenStore
from airflow_provider_spotfire.api.scopes import ALL_API_SCOPES, OFFLINE
from airflow_provider_spotfire.exceptions import SpotfireApiError, SpotfireError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/auth"
DEFAULT_TIMEOUT = 300.0
_LEGACY_PREFIX = "extra__spotfire__"
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# Loggers that print token requests/responses at DEBUG (requests-oauthlib logs the token body).
_CHATTY_LOGGERS = ("requests_oauthlib", "oauthlib")


class LoginError(SpotfireError):
    """``login`` or ``revoke`` could not be completed; the message says why and how to fix it."""


@dataclass(frozen=True)
class ServerEndpoints:
    """Authorization server endpoints (RFC 8414 metadata, or Spotfire's documented defaults)."""

    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    issuer: str | None = None
    iss_parameter_supported: bool = False
    from_metadata: bool = False


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


@dataclass(frozen=True)
class RevokeResult:
    """Outcome of :func:`run_revoke`."""

    conn_id: str
    revoked: int
    removed_from_connection: bool
    variable_cleared: bool
    location: str


# ---------------------------------------------------------------------------------------------------
# The connection: where it lives, and how it is read and updated
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    conn: Any
    source: str  # secrets backend class name
    in_metadata_db: bool

    def extra(self) -> dict[str, Any]:
        return _parse_extra(self.conn)

    @property
    def where(self) -> str:
        """Where the connection is defined, for messages."""
        if self.in_metadata_db:
            return "the Airflow metadata DB"
        if self.source == "EnvironmentVariablesBackend":
            return f"the environment variable AIRFLOW_CONN_{self.conn.conn_id.upper()}"
        return f"the secrets backend {self.source}"


def _parse_extra(conn: Any) -> dict[str, Any]:
    text = getattr(conn, "extra", None) or "{}"
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LoginError(
            f"Spotfire connection {conn.conn_id!r}: its extra is not a JSON object. Fix it with "
            f"`airflow connections edit` or the UI, then run the command again."
        )
    return data


def _locate(conn_id: str) -> _Located:
    """Find the connection the way Airflow's servers do: custom backend, env vars, metadata DB."""
    from airflow.configuration import ensure_secrets_loaded
    from airflow.secrets.metastore import MetastoreBackend

    for backend in ensure_secrets_loaded():
        name = type(backend).__name__
        try:
            conn = backend.get_connection(conn_id=conn_id)
        except Exception as exc:
            if isinstance(backend, MetastoreBackend):
                raise LoginError(
                    f"Cannot read connection {conn_id!r} from the Airflow metadata DB "
                    f"({type(exc).__name__}). Run this command where Airflow's database is configured "
                    "(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN) and initialised (`airflow db migrate`)."
                ) from None
            log.debug("Secrets backend %s could not be read for %s.", name, conn_id, exc_info=True)
            continue
        if conn is not None:
            return _Located(conn, name, isinstance(backend, MetastoreBackend))
    raise LoginError(
        f"Airflow connection {conn_id!r} does not exist. Create it first, e.g. `airflow connections add "
        f"{conn_id} --conn-type spotfire --conn-host https://spotfire.example.com --conn-login <client id>` "
        "(add --conn-password <client secret> for web clients)."
    )


def _login_config(located: _Located, conn_id: str) -> SpotfireConnectionConfig:
    """Validate host/client/TLS settings as for a refresh-token connection that has no token yet."""
    conn_type = getattr(located.conn, "conn_type", None)
    if conn_type and conn_type != "spotfire":
        raise LoginError(
            f"Connection {conn_id!r} has type {conn_type!r}, not 'spotfire'; pass the id of your Spotfire "
            "connection with --conn-id."
        )
    extra = {
        k: v
        for k, v in located.extra().items()
        if k.removeprefix(_LEGACY_PREFIX) not in ("grant_type", "refresh_token")
    }
    view = SimpleNamespace(
        conn_id=conn_id,
        host=located.conn.host,
        port=located.conn.port,
        login=located.conn.login,
        password=located.conn.password,
        extra_dejson={**extra, "grant_type": GRANT_REFRESH_TOKEN, "refresh_token": "-"},
    )
    return replace(SpotfireConnectionConfig.from_connection(view), refresh_token=None)


def _with_token(extra: dict[str, Any], refresh_token: str | None) -> dict[str, Any]:
    out = {
        k: v
        for k, v in extra.items()
        if k.removeprefix(_LEGACY_PREFIX) not in ("grant_type", "refresh_token")
    }
    out["grant_type"] = GRANT_REFRESH_TOKEN
    if refresh_token:
        out["refresh_token"] = refresh_token
    return out


def _update_db_extra(conn_id: str, update: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Rewrite the extra of a connection in the metadata DB in one transaction."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id).limit(1))
        if conn is None:
            raise LoginError(
                f"Airflow connection {conn_id!r} disappeared from the metadata DB; create it again."
            )
        conn.set_extra(json.dumps(update(_parse_extra(conn))))


# ---------------------------------------------------------------------------------------------------
# HTTP helpers
# ---------------------------------------------------------------------------------------------------


def _path(url: str) -> str:
    return urlsplit(url).path


def discover(config: SpotfireConnectionConfig, session: requests.Session | None = None) -> ServerEndpoints:
    """Endpoints from the server's RFC 8414 metadata; Spotfire's documented paths when it has none."""
    http = session or requests.Session()
    defaults = ServerEndpoints(
        authorization_endpoint=config.server_url + "/oauth2/auth",
        token_endpoint=config.default_token_url,
        revocation_endpoint=config.server_url + "/oauth2/revoke",
    )
    try:
        r = http.get(
            config.metadata_url,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            verify=config.verify,
            timeout=config.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise transport_error("GET", _path(config.metadata_url), exc, sent=True) from None
    try:
        body = r.json() if r.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        log.info(
            "No OAuth2 metadata at %s (HTTP %s); using the default endpoints.",
            config.metadata_url,
            r.status_code,
        )
        return defaults

    def url(key: str, default: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            return default
        if value.startswith("http://") and config.base_url.startswith("https://"):
            raise LoginError(
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


def _basic_auth(config: SpotfireConnectionConfig) -> str:
    # RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
    raw = f"{quote(config.client_id, safe='')}:{quote(config.client_secret or '', safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


class _HeaderAuth(requests.auth.AuthBase):
    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.value
        return r


@contextlib.contextmanager
def _oauthlib_guards(config: SpotfireConnectionConfig) -> Iterator[None]:
    """Silence requests-oauthlib's DEBUG token logging; allow http where the connection allows it.

    oauthlib refuses plain-http endpoints unless ``OAUTHLIB_INSECURE_TRANSPORT`` is set; the
    connection was already validated (http only for loopback hosts or with allow_insecure_http).
    """
    saved_levels = {name: logging.getLogger(name).level for name in _CHATTY_LOGGERS}
    saved_env = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if config.base_url.startswith("http://"):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        yield
    finally:
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        if saved_env is None:
            os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = saved_env


# ---------------------------------------------------------------------------------------------------
# The loopback redirect receiver (RFC 8252 7.3)
# ---------------------------------------------------------------------------------------------------

_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Spotfire sign-in</title></head>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body></html>"
)


class _CallbackServer:
    """A one-shot HTTP server on a loopback address that captures the authorization response."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.path = path
        self.params: dict[str, list[str]] | None = None
        self.received = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "airflow-spotfire-login"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != receiver.path:
                    self._reply(404, "Not found", "This is the Airflow Spotfire sign-in receiver.")
                    return
                if receiver.received.is_set():
                    self._reply(409, "Already done", "This sign-in was already handled; close this window.")
                    return
                receiver.params = parse_qs(parts.query, keep_blank_values=True)
                if "error" in receiver.params:
                    error = receiver.params["error"][0]
                    self._reply(
                        200,
                        "Spotfire sign-in was not completed",
                        f"Spotfire answered {error}. Return to the terminal.",
                    )
                else:
                    self._reply(
                        200,
                        "Spotfire sign-in received",
                        "You can close this window and return to the terminal.",
                    )
                receiver.received.set()

            def _reply(self, status: int, title: str, text: str) -> None:
                body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # the request line holds the code
                return

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(http.server.HTTPServer):
            address_family = family

        try:
            self.httpd = Server((host, port), Handler)
        except OSError as exc:
            raise LoginError(
                f"Cannot listen on {host}:{port} for the browser redirect ({exc.strerror or exc}). "
                "Pick another --port (0 picks a free one)."
            ) from None
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="spotfire-login",
            daemon=True,
        )

    def __enter__(self) -> _CallbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _redirect_target(port: int, redirect_uri: str | None) -> tuple[str, str, int, str]:
    """(template of the redirect URI, bind host, port, path) from --port / --redirect-uri."""
    if redirect_uri is None:
        if not 0 <= port <= 65535:
            raise LoginError(f"--port must be between 0 and 65535 (0 picks a free port), got {port}.")
        return "http://127.0.0.1:{port}" + CALLBACK_PATH, "127.0.0.1", port, CALLBACK_PATH
    parts = urlsplit(redirect_uri)
    try:
        uri_port = parts.port
    except ValueError:
        uri_port = None
    if (
        parts.scheme != "http"
        or parts.hostname not in _LOOPBACK_HOSTS
        or not uri_port
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise LoginError(
            f"--redirect-uri {redirect_uri!r} is not a loopback redirect. Use http://127.0.0.1:<port>/<path> "
            "(or [::1]) with the exact URI registered for the client (register-api-client -R...)."
        )
    host = "::1" if parts.hostname == "::1" else "127.0.0.1"
    return redirect_uri, host, uri_port, parts.path or "/"


# ---------------------------------------------------------------------------------------------------
# login
# ---------------------------------------------------------------------------------------------------


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise LoginError(
            f"The authorization response repeats the parameter {name!r}; nothing was stored. Run login again."
        )
    return values[0]


_AUTHZ_ADVICE = {
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
        raise LoginError(text + ". " + _AUTHZ_ADVICE.get(error, "Fix the cause and run login again."))
    code = _first(params, "code")
    if not code:
        raise LoginError("The authorization response has neither code nor error; run login again.")
    return code


def _requested_scopes(config: SpotfireConnectionConfig, scopes: Sequence[str] | None) -> list[str]:
    chosen = [s for s in (scopes or config.scopes_override or ALL_API_SCOPES) if s]
    out: list[str] = []
    for s in [*chosen, OFFLINE]:
        if any(c.isspace() or c in '"\\' for c in s):
            raise LoginError(f'Invalid scope {s!r}: scopes are separated by spaces, e.g. --scopes "a b".')
        if s not in out:
            out.append(s)
    return out


def _reason(exc: SpotfireApiError) -> str:
    text = f"HTTP {exc.status_code}" + (f" {exc.code}" if exc.code else "")
    return text + (f" ({exc.description.rstrip('.')})" if exc.description else "")


def _exchange_code(
    oauth: OAuth2Session, config: SpotfireConnectionConfig, endpoints: ServerEndpoints, code: str
) -> dict[str, Any]:
    token_path = _path(endpoints.token_endpoint)

    def check_status(r: requests.Response) -> requests.Response:
        raise_for_response(
            "POST", token_path, HttpResponse(r.status_code, r.headers, r.content), client_id=config.client_id
        )
        return r

    oauth.register_compliance_hook("access_token_response", check_status)
    kwargs: dict[str, Any] = {"verify": config.verify, "timeout": config.timeout}
    if not config.client_secret:  # public client: identifies itself in the body, PKCE proves possession
        kwargs["include_client_id"] = True
    elif config.token_auth_method == "client_secret_post":
        kwargs.update(include_client_id=True, client_secret=config.client_secret)
    else:
        kwargs["auth"] = _HeaderAuth(_basic_auth(config))
    try:
        return dict(oauth.fetch_token(endpoints.token_endpoint, code=code, **kwargs))
    except SpotfireApiError as exc:
        advice = {
            "invalid_client": "Check the client id (Login) and, for web clients, the client secret "
            "(Password); native clients have no secret, so leave Password empty.",
            "invalid_grant": "The code expired or was already used; run login again and finish it promptly.",
            "unauthorized_client": _AUTHZ_ADVICE["unauthorized_client"],
        }.get(exc.code or "", "Fix the cause and run login again.")
        raise LoginError(
            f"The token endpoint refused the authorization code: {_reason(exc)}. {advice}"
        ) from None
    except OAuth2Error as exc:  # a 2xx answer that is not a token response
        raise LoginError(
            f"The token endpoint {endpoints.token_endpoint} answered without a usable token ({exc.error}); "
            "check that the connection host is the Spotfire Server."
        ) from None
    except Warning as w:  # oauthlib: "Scope has changed" -- the server granted fewer scopes
        return dict(getattr(w, "token", None) or {})
    except requests.RequestException as exc:
        raise transport_error("POST", token_path, exc, sent=True) from None
    except ValueError:  # not an OAuth2 token response at all
        raise LoginError(
            f"The token endpoint {endpoints.token_endpoint} answered without a token; check that the "
            "connection host is the Spotfire Server."
        ) from None


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
    :param port: loopback port for the redirect (0 = a free port; fix it for web clients, whose
        redirect URI must be registered exactly).
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
    located = _locate(conn_id)
    if not located.in_metadata_db and not allow_outside_db:
        raise LoginError(
            f"Connection {conn_id!r} is defined by {located.where}, which this command cannot update "
            "(and which takes precedence over the metadata DB). Either move the connection to the metadata "
            f"DB (`airflow connections add {conn_id} ...`, then remove it from {located.where}), or rerun "
            "with --print-extra, which prints the connection extra including the new refresh token (a "
            f"secret!), and store that extra in {located.where} yourself."
        )
    config = _login_config(located, conn_id)
    requested = _requested_scopes(config, scopes)
    template, host, bind_port, path = _redirect_target(port, redirect_uri)

    with _oauthlib_guards(config), requests.Session() as http:
        http.headers["User-Agent"] = USER_AGENT
        endpoints = discover(config, http)
        with _CallbackServer(host, bind_port, path) as receiver:
            uri = template.format(port=receiver.port) if redirect_uri is None else redirect_uri
            oauth = OAuth2Session(config.client_id, redirect_uri=uri, scope=requested, pkce="S256")
            oauth.headers["User-Agent"] = USER_AGENT
            auth_url, state = oauth.authorization_url(endpoints.authorization_endpoint)
            echo(
                f"Sign in to Spotfire at {config.server_url} as the user the Airflow tasks should act for "
                f"(client {config.client_id!r}, scopes: {' '.join(requested)}). Waiting up to "
                f"{timeout:g} s for the browser to come back to {uri} ..."
            )
            if open_url is None:
                if not webbrowser.open(auth_url):
                    echo(f"Could not start a browser; open this URL yourself:\n{auth_url}")
            else:
                open_url(auth_url)
            if not receiver.received.wait(timeout):
                raise LoginError(
                    f"No browser redirect arrived at {uri} within {timeout:g} s. Finish the sign-in in the "
                    "browser, or, if it shows a Spotfire error page (e.g. invalid redirect_uri), fix the "
                    "client registration: native clients accept http://127.0.0.1:<any port>/auth, web "
                    "clients need the redirect URI registered exactly (match it with --port/--redirect-uri)."
                )
            params = receiver.params or {}
        code = check_authorization_response(params, expected_state=state, endpoints=endpoints)
        mask(code)
        token = _exchange_code(oauth, config, endpoints, code)

    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise LoginError(
            f"Spotfire signed the user in but issued no refresh token. Register client {config.client_id!r} "
            "with -Grefresh_token and the scope -Soffline (and keep offline among the requested scopes)."
        )
    mask(str(refresh_token))
    mask(token.get("access_token"))
    granted = token.get("scope") or requested
    granted_scopes = tuple(granted if isinstance(granted, list) else str(granted).split())
    extra = _with_token(located.extra(), str(refresh_token))
    if located.in_metadata_db:
        _update_db_extra(conn_id, lambda current: _with_token(current, str(refresh_token)))
    return LoginResult(
        conn_id=conn_id,
        client_id=config.client_id,
        scopes=granted_scopes,
        redirect_uri=uri,
        saved=located.in_metadata_db,
        location=located.where,
        extra=extra,
    )


# ---------------------------------------------------------------------------------------------------
# revoke
# ---------------------------------------------------------------------------------------------------


def _rotated_token(config: SpotfireConnectionConfig) -> str | None:
    """The refresh token persisted in the rotation Variable (metadata DB), whatever its origin."""
    from airflow.models.variable import Variable

    try:
        raw = Variable.get(VariableRefreshTokenStore.key(config), default_var=None)
    except Exception:
        log.debug("Could not read the rotated refresh token Variable.", exc_info=True)
        return None
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    value = data.get("refresh_token") if isinstance(data, dict) else None
    return str(value) if value else None


def _revoke_one(http: requests.Session, config: SpotfireConnectionConfig, url: str, token: str) -> None:
    form = {"token": token, "token_type_hint": "refresh_token"}
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if not config.client_secret:
        form["client_id"] = config.client_id
    elif config.token_auth_method == "client_secret_post":
        form.update(client_id=config.client_id, client_secret=config.client_secret)
    else:
        headers["Authorization"] = _basic_auth(config)
    try:
        r = http.post(
            url,
            data=form,
            headers=headers,
            verify=config.verify,
            timeout=config.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise transport_error("POST", _path(url), exc, sent=True) from None
    try:
        raise_for_response(
            "POST", _path(url), HttpResponse(r.status_code, r.headers, r.content), client_id=config.client_id
        )
    except SpotfireApiError as exc:
        raise LoginError(
            f"Spotfire refused to revoke the refresh token: {_reason(exc)}. The token was kept in the "
            "connection. Check the client id/secret of the connection and run revoke again."
        ) from None


def run_revoke(conn_id: str, *, echo: Callable[[str], None] = _stderr) -> RevokeResult:
    """Revoke the connection's refresh token (and a rotated one) at Spotfire and remove them.

    The token is removed from the connection only if the connection lives in the metadata DB;
    for env var / secrets backend connections the caller must remove it there.
    """
    located = _locate(conn_id)
    config = _login_config(located, conn_id)
    extra = located.extra()
    stored = next(
        (str(extra[k]) for k in ("refresh_token", _LEGACY_PREFIX + "refresh_token") if extra.get(k)), None
    )
    rotated = _rotated_token(config)
    tokens = [t for t in dict.fromkeys([rotated, stored]) if t]
    if not tokens:
        raise LoginError(
            f"Connection {conn_id!r} has no refresh token to revoke (no refresh_token extra and no Variable "
            f"{VariableRefreshTokenStore.key(config)}). Nothing to do."
        )
    for token in tokens:
        mask(token)
    with _oauthlib_guards(config), requests.Session() as http:
        endpoints = discover(config, http)
        for token in tokens:
            _revoke_one(http, config, endpoints.revocation_endpoint, token)
    echo(f"Revoked {len(tokens)} refresh token(s) of client {config.client_id!r} at {config.server_url}.")

    variable_cleared = False
    if rotated:
        from airflow.models.variable import Variable

        Variable.delete(VariableRefreshTokenStore.key(config))
        variable_cleared = True
    if located.in_metadata_db:
        _update_db_extra(conn_id, lambda current: _with_token(current, None))
    return RevokeResult(
        conn_id=conn_id,
        revoked=len(tokens),
        removed_from_connection=located.in_metadata_db,
        variable_cleared=variable_cleared,
        location=located.where,
    )


__all__ = [
    "CALLBACK_PATH",
    "LoginError",
    "LoginResult",
    "RevokeResult",
    "ServerEndpoints",
    "check_authorization_response",
    "discover",
    "run_login",
    "run_revoke",
]
