"""OAuth 2.0 authorization server of the emulator and the ``require_scope`` dependency of the API routers.

Implements RFC 6749 (authorization code, client credentials, refresh token), RFC 7636 (PKCE, S256 only),
RFC 8252 loopback redirects for native clients, RFC 8414 metadata, RFC 9207 ``iss`` and RFC 7009
revocation; resource requests use RFC 6750 bearer tokens.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from airflow_provider_spotfire.emulator.constants import ALL_SCOPES, GRANT_TYPES, SCOPE_OFFLINE
from airflow_provider_spotfire.emulator.core import ApiClient, User, new_id
from airflow_provider_spotfire.emulator.errors import ApiError
from airflow_provider_spotfire.emulator.oauth_store import AuthCode
from airflow_provider_spotfire.emulator.state import EmulatorState

INFO_KEY = "spotfire_emulator.info"
REALM = "spotfire"
_PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_MAX_FORM_BYTES = 64 * 1024

router = APIRouter(tags=["oauth2"])


def get_state(request: Request) -> EmulatorState:
    """The emulator state of the app serving ``request``."""
    return request.app.state.emulator


def request_info(request: Request) -> dict[str, Any]:
    """Per-request scratch dict shared with the request-log middleware (client id, scopes, ...)."""
    info = request.scope.get(INFO_KEY)
    if info is None:
        info = request.scope[INFO_KEY] = {}
    return info


def base_url(request: Request) -> str:
    """Public base URL (``config.public_url`` or scheme://host[:port] of the request), no trailing slash."""
    configured = get_state(request).config.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


def issuer(request: Request) -> str:
    """The authorization server issuer identifier (RFC 8414 / RFC 9207)."""
    return base_url(request) + "/spotfire"


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response of the token / revocation endpoints."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        """The JSON error response (401 + ``WWW-Authenticate: Basic`` for invalid_client)."""
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.error == "invalid_client":
            headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


# --- metadata
@router.get("/spotfire/.well-known/oauth-authorization-server")
async def metadata(request: Request) -> Response:
    """RFC 8414 authorization server metadata (404 when ``metadata_enabled`` is off)."""
    if not get_state(request).config.metadata_enabled:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    iss = issuer(request)
    methods = ["client_secret_basic", "client_secret_post", "none"]
    return JSONResponse(
        {
            "issuer": iss,
            "authorization_endpoint": f"{iss}/oauth2/auth",
            "token_endpoint": f"{iss}/oauth2/token",
            "revocation_endpoint": f"{iss}/oauth2/revoke",
            "grant_types_supported": list(GRANT_TYPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "token_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_methods_supported": methods,
            "scopes_supported": list(ALL_SCOPES),
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }
    )


# --- helpers
async def _read_form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "The request must use Content-Type application/x-www-form-urlencoded"
        )
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > _MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "The request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "The request body is not valid UTF-8") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise OAuthError("invalid_request", f"Parameter {key} is included more than once")
        form[key] = value
    return form


def _required(params: Mapping[str, str], name: str) -> str:
    """The non-empty parameter ``name``, else ``invalid_request``."""
    value = params.get(name)
    if not value:
        raise OAuthError("invalid_request", f"Missing parameter: {name}")
    return value


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    auth = request.headers.get("authorization")
    if not auth:
        return None
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", f"Unsupported authentication scheme {scheme}", 401)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        cid, sep, secret = decoded.partition(":")
        if not sep:
            raise ValueError("no colon")
    except (ValueError, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "Malformed HTTP Basic credentials", 401) from exc
    # RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding
    return unquote_plus(cid), unquote_plus(secret)


def authenticate_client(state: EmulatorState, request: Request, form: dict[str, str]) -> ApiClient:
    """Authenticate the client of a token/revocation request (Basic, form body or public client id)."""
    basic = _basic_credentials(request)
    form_id = form.get("client_id")
    claimed = basic[0] if basic else form_id
    info = request_info(request)
    info["client_id"] = claimed
    state.count(
        "token_requests" if request.url.path.endswith("/token") else "revocation_requests", claimed or "-"
    )
    if basic and "client_secret" in form:
        raise OAuthError("invalid_request", "The client must not use more than one authentication method")
    if basic and form_id is not None and form_id != basic[0]:
        raise OAuthError("invalid_client", "client_id does not match the authenticated client", 401)
    if basic:
        method, secret = "client_secret_basic", basic[1]
    elif "client_secret" in form:
        method, secret = "client_secret_post", form["client_secret"]
    else:
        method, secret = "none", None
    if not claimed:
        raise OAuthError("invalid_client", "Client authentication failed: no client credentials", 401)
    with state.lock:
        client = state.principals.clients.get(claimed)
    if client is None:
        raise OAuthError("invalid_client", "Client authentication failed: unknown client", 401)
    if client.is_public:
        if method != "none":
            raise OAuthError(
                "invalid_client",
                "Client authentication failed: no credentials are issued to this client",
                401,
            )
        return client
    if method == "none":
        raise OAuthError(
            "invalid_client", "Client authentication failed: client credentials are required", 401
        )
    if method not in client.token_endpoint_auth_methods:
        raise OAuthError(
            "invalid_client",
            f"Client authentication failed: {method} is not allowed for this client "
            f"(allowed: {', '.join(client.token_endpoint_auth_methods)})",
            401,
        )
    if not secrets.compare_digest((secret or "").encode(), (client.client_secret or "").encode()):
        raise OAuthError("invalid_client", "Client authentication failed: bad client credentials", 401)
    return client


def _parse_scope(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    out: list[str] = []
    for s in raw.split(" "):
        if s and s not in out:
            out.append(s)
    return out


def _check_scopes(client: ApiClient, requested: list[str] | None) -> list[str]:
    if not requested:
        return list(client.scopes)
    unknown = [s for s in requested if s not in client.scopes]
    if unknown:
        raise OAuthError(
            "invalid_scope", f"The client is not registered for the scope(s): {' '.join(unknown)}"
        )
    return requested


def _token_response(
    state: EmulatorState, client: ApiClient, access: Any, refresh: Any | None
) -> JSONResponse:
    body: dict[str, Any] = {
        "access_token": access.value,
        "token_type": "Bearer",
        "expires_in": round(access.expires_at - access.issued_at),
        "scope": " ".join(access.scopes),
    }
    if refresh is not None:
        body["refresh_token"] = refresh.value
    state.count("tokens_issued", client.client_id)
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --- token
@router.post("/spotfire/oauth2/token")
async def token_endpoint(request: Request) -> Response:
    """RFC 6749 token endpoint: client_credentials, authorization_code (+PKCE) and refresh_token."""
    return await _client_request(request, _token)


async def _client_request(
    request: Request, handler: Callable[[EmulatorState, ApiClient, dict[str, str]], Response]
) -> Response:
    """Read the form, authenticate the client and run ``handler``; an :class:`OAuthError` is answered."""
    state = get_state(request)
    try:
        form = await _read_form(request)
        client = authenticate_client(state, request, form)
        return handler(state, client, form)
    except OAuthError as err:
        return err.response()


def _token(state: EmulatorState, client: ApiClient, form: dict[str, str]) -> Response:
    grant_type = _required(form, "grant_type")
    if grant_type not in GRANT_TYPES:
        raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    if grant_type not in client.grant_types:
        raise OAuthError(
            "unauthorized_client",
            f"The client (profile {client.profile}) may not use the {grant_type} grant",
        )
    if grant_type == "client_credentials":
        return _client_credentials(state, client, form)
    if grant_type == "authorization_code":
        return _authorization_code(state, client, form)
    return _refresh(state, client, form)


def _client_credentials(state: EmulatorState, client: ApiClient, form: dict[str, str]) -> JSONResponse:
    requested = _parse_scope(form.get("scope"))
    scopes = _check_scopes(client, requested)
    if not requested:
        scopes = [s for s in scopes if s != SCOPE_OFFLINE]
    access = state.oauth.issue(
        "access", client.client_id, client.user_id, scopes, state.config.token_lifetime, new_id()
    )
    return _token_response(state, client, access, None)


def _refresh_lifetime(state: EmulatorState) -> float | None:
    return state.config.refresh_token_lifetime or None


def _authorization_code(state: EmulatorState, client: ApiClient, form: dict[str, str]) -> JSONResponse:
    code_value = _required(form, "code")
    with state.lock:
        code = state.oauth.auth_codes.get(code_value)
        now = state.now()
        if code is None or code.client_id != client.client_id:
            raise OAuthError(
                "invalid_grant", "The authorization code is invalid or was issued to another client"
            )
        if code.used:
            state.oauth.revoke_grant(code.grant_id)
            raise OAuthError("invalid_grant", "The authorization code has already been used")
        if now >= code.expires_at:
            raise OAuthError("invalid_grant", "The authorization code has expired")
        redirect_uri = form.get("redirect_uri")
        if code.redirect_uri_in_request and redirect_uri is None:
            raise OAuthError(
                "invalid_grant", "redirect_uri is required (it was used in the authorization request)"
            )
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier")
        if code.code_challenge is not None:
            if not verifier:
                raise OAuthError("invalid_grant", "code_verifier is required (PKCE was used)")
            if not _PKCE_RE.match(verifier) or _pkce_s256(verifier) != code.code_challenge:
                raise OAuthError("invalid_grant", "PKCE verification failed: code_verifier does not match")
        elif verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier sent but no code_challenge was used")
        code.used = True
        access = state.oauth.issue(
            "access", client.client_id, code.user_id, code.scopes, state.config.token_lifetime, code.grant_id
        )
        refresh = None
        if SCOPE_OFFLINE in code.scopes and "refresh_token" in client.grant_types:
            refresh = state.oauth.issue(
                "refresh",
                client.client_id,
                code.user_id,
                code.scopes,
                _refresh_lifetime(state),
                code.grant_id,
            )
    return _token_response(state, client, access, refresh)


def _refresh(state: EmulatorState, client: ApiClient, form: dict[str, str]) -> JSONResponse:
    value = _required(form, "refresh_token")
    state.count("refresh_requests")
    with state.lock:
        now = state.now()
        old = state.oauth.tokens.get(value)
        if old is None or old.kind != "refresh" or old.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The refresh token is invalid or was issued to another client")
        cfg = state.config
        if old.rotated and cfg.rotate_refresh_tokens and cfg.refresh_token_reuse_detection:
            state.count("reuse_detected")
            state.oauth.revoke_grant(old.grant_id)
            raise OAuthError(
                "invalid_grant",
                "The refresh token was already used (refresh token reuse detected): every token of this "
                "grant has been revoked; log in again",
            )
        if not old.valid(now):
            raise OAuthError("invalid_grant", "The refresh token is expired or revoked")
        requested = _parse_scope(form.get("scope"))
        if requested:
            extra = [s for s in requested if s not in old.scopes]
            if extra:
                raise OAuthError("invalid_scope", f"Scope(s) not granted originally: {' '.join(extra)}")
        scopes = requested or list(old.scopes)
        access = state.oauth.issue(
            "access", client.client_id, old.user_id, scopes, state.config.token_lifetime, old.grant_id
        )
        if state.config.rotate_refresh_tokens:
            old.revoked = old.rotated = True
            refresh = state.oauth.issue(
                "refresh", client.client_id, old.user_id, old.scopes, _refresh_lifetime(state), old.grant_id
            )
        else:
            refresh = old
    return _token_response(state, client, access, refresh)


# --- revoke
@router.post("/spotfire/oauth2/revoke")
async def revoke_endpoint(request: Request) -> Response:
    """RFC 7009 token revocation (200 also for unknown tokens)."""
    return await _client_request(request, _revoke)


def _revoke(state: EmulatorState, client: ApiClient, form: dict[str, str]) -> Response:
    value = _required(form, "token")
    with state.lock:
        tok = state.oauth.tokens.get(value)
        if tok is not None:
            if tok.client_id != client.client_id:
                raise OAuthError("invalid_grant", "The token was issued to another client")
            if tok.kind == "refresh":
                state.oauth.revoke_grant(tok.grant_id)
            else:
                tok.revoked = True
    return Response(status_code=200, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# --- authorize
def is_loopback_redirect(uri: str) -> bool:
    """RFC 8252 §7.3 loopback redirect as the spec allows: http, 127.0.0.1 or [::1], any port, / or /auth."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.hostname in ("127.0.0.1", "::1")
        and parts.path in ("", "/", "/auth")
        and not parts.query
        and not parts.fragment
        and not parts.username
        and not parts.password
    )


def valid_redirect(client: ApiClient, uri: str) -> bool:
    """Registered redirect URIs (exact match); native clients may also use loopback redirects."""
    if "#" in uri:
        return False
    if uri in client.redirect_uris:
        return True
    return client.profile == "native" and is_loopback_redirect(uri)


def _error_page(error: str, description: str) -> HTMLResponse:
    body = (
        "<!DOCTYPE html><html><head><title>Spotfire - Authorization error</title></head><body>"
        f"<h1>Authorization error</h1><p id='error'>{html.escape(error)}</p>"
        f"<p id='error_description'>{html.escape(description)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=400, headers={"Cache-Control": "no-store"})


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    sep = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(
        uri + sep + urlencode(params), status_code=302, headers={"Cache-Control": "no-store"}
    )


@router.get("/spotfire/oauth2/auth")
async def authorize_endpoint(request: Request) -> Response:
    """Authorization endpoint: auto-approves ``config.authorize_user`` and redirects with code, state, iss."""
    state = get_state(request)
    target = _authorize_target(state, request)
    if isinstance(target, HTMLResponse):
        return target
    client, redirect_uri, in_request = target
    q = request.query_params
    params: dict[str, str] = {}
    try:
        scopes, challenge, method, user = _authorize_checks(state, client, q)
    except OAuthError as err:
        params = {"error": err.error, "error_description": err.description}
    else:
        code = secrets.token_urlsafe(32)
        with state.lock:
            state.oauth.auth_codes[code] = AuthCode(
                code=code,
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                redirect_uri_in_request=in_request,
                scopes=scopes,
                user_id=user.user_id,
                code_challenge=challenge,
                code_challenge_method=method if challenge else None,
                expires_at=state.now() + state.config.auth_code_lifetime,
                grant_id=new_id(),
            )
        params = {"code": code}
    if q.get("state") is not None:
        params["state"] = q["state"]
    params["iss"] = issuer(request)
    return _redirect(redirect_uri, params)


def _authorize_target(state: EmulatorState, request: Request) -> tuple[ApiClient, str, bool] | HTMLResponse:
    """(client, redirect URI, whether it was in the request), or the error page when there is no safe
    place to redirect errors to (duplicate parameters, unknown client, bad redirect URI)."""
    q = request.query_params
    for key in set(q.keys()):
        if len(q.getlist(key)) > 1:
            return _error_page("invalid_request", f"Parameter {key} is included more than once")
    client_id = q.get("client_id")
    request_info(request)["client_id"] = client_id
    if not client_id:
        return _error_page("invalid_request", "Missing parameter: client_id")
    with state.lock:
        client = state.principals.clients.get(client_id)
    if client is None:
        return _error_page("invalid_client", f"Unknown client: {client_id}")
    redirect_uri = q.get("redirect_uri")
    in_request = redirect_uri is not None
    if redirect_uri is None:
        if len(client.redirect_uris) != 1:
            return _error_page("invalid_request", "Missing parameter: redirect_uri")
        redirect_uri = client.redirect_uris[0]
    if not valid_redirect(client, redirect_uri):
        return _error_page("invalid_request", f"Invalid redirect_uri for client {client_id}: {redirect_uri}")
    return client, redirect_uri, in_request


def _authorize_checks(
    state: EmulatorState, client: ApiClient, q: Any
) -> tuple[list[str], str | None, str | None, User]:
    """(scopes, code challenge, challenge method, end user) of a valid request, else ``OAuthError``."""
    response_type = _required(q, "response_type")
    if response_type != "code":
        raise OAuthError("unsupported_response_type", f"Unsupported response_type: {response_type}")
    if "authorization_code" not in client.grant_types:
        raise OAuthError(
            "unauthorized_client", f"The client (profile {client.profile}) may not use authorization_code"
        )
    scopes = _check_scopes(client, _parse_scope(q.get("scope")))
    challenge = q.get("code_challenge")
    method = q.get("code_challenge_method")
    if challenge is None and method is not None:
        raise OAuthError("invalid_request", "code_challenge_method without code_challenge")
    if challenge is not None:
        if (method or "plain") != "S256":
            raise OAuthError("invalid_request", "Unsupported code_challenge_method (only S256 is supported)")
        if not re.fullmatch(r"[A-Za-z0-9\-_]{43}", challenge):
            raise OAuthError("invalid_request", "Malformed code_challenge")
    elif client.is_public:
        raise OAuthError("invalid_request", "PKCE is required for public clients (code_challenge missing)")
    cfg = state.config
    if cfg.authorize_deny:
        raise OAuthError("access_denied", "The end-user denied the request")
    user = state.principals.find_user_by_name(cfg.authorize_user)
    if user is None or user.client_id is not None:
        raise OAuthError("access_denied", f"Unknown end-user {cfg.authorize_user}")
    return scopes, challenge, method, user


# --- resources
@dataclass
class Caller:
    """The authenticated caller of an API request (API client, and the user the token acts for)."""

    client: ApiClient
    user_id: str
    scopes: list[str]

    @property
    def client_id(self) -> str:
        """The API client id."""
        return self.client.client_id


def _bearer_challenge(**params: str) -> dict[str, str]:
    parts = [f'realm="{REALM}"'] + [f'{k}="{v}"' for k, v in params.items()]
    return {"WWW-Authenticate": "Bearer " + ", ".join(parts)}


def require_scope(*scopes: str) -> Callable[[Request], Awaitable[Caller]]:
    """FastAPI dependency: a valid bearer token holding at least one of ``scopes`` (RFC 6750)."""
    needed = " ".join(scopes)

    async def dependency(request: Request) -> Caller:
        state = get_state(request)
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer":
            raise ApiError(
                "not_authenticated",
                "The API client is not authenticated: missing bearer access token",
                headers=_bearer_challenge(),
            )
        with state.lock:
            tok = state.oauth.tokens.get(value)
            now = state.now()
            reason = None
            if tok is None or tok.kind != "access":
                reason = "The access token is invalid"
            elif tok.revoked:
                reason = "The access token has been revoked"
            elif tok.expires_at is not None and now >= tok.expires_at:
                reason = "The access token has expired"
            client = state.principals.clients.get(tok.client_id) if tok else None
            if reason is None and client is None:
                reason = "The API client of the access token no longer exists"
        if reason is not None or tok is None or client is None:
            raise ApiError(
                "not_authenticated",
                f"The API client is not authenticated: {reason}",
                headers=_bearer_challenge(error="invalid_token", error_description=reason or ""),
            )
        info = request_info(request)
        info["client_id"] = client.client_id
        info["scopes"] = list(tok.scopes)
        if not any(s in tok.scopes for s in scopes):
            desc = f"The access token lacks the required scope {' or '.join(scopes)}"
            raise ApiError(
                "not_authorized",
                f"The API client is not authorized to access the requested resource: {desc}",
                headers=_bearer_challenge(error="insufficient_scope", error_description=desc, scope=needed),
            )
        return Caller(client=client, user_id=tok.user_id, scopes=list(tok.scopes))

    return dependency
