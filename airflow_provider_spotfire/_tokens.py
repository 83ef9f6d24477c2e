"""OAuth2 access tokens: the one place that owns their lifetime, for sync and async callers.

A :class:`TokenManager` exists once per process for each (server, client, grant, secret). It
builds token requests and parses token responses with :mod:`oauthlib` (the engine under
requests-oauthlib) so the sync and async paths share every rule; only the sending differs
(:meth:`TokenManager.get_token` / :meth:`TokenManager.aget_token`).

Rules: tokens are cached per scope set and renewed ahead of expiry; a 401 from an API call
invalidates exactly the token that was used; a rotated refresh token is kept in memory and
handed to the :class:`RefreshTokenStore` so that it survives the process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from oauthlib.oauth2 import BackendApplicationClient, WebApplicationClient
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from airflow_provider_spotfire._connection import (
    AUTH_BASIC,
    GRANT_REFRESH_TOKEN,
    SpotfireConnectionConfig,
    token_endpoint_not_found,
)
from airflow_provider_spotfire._http import AsyncTransport, HttpRequest, HttpResponse, SyncTransport
from airflow_provider_spotfire._secrets import amask, mask
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireAuthenticationError,
    SpotfireError,
)

log = logging.getLogger(__name__)

# A token without expires_in is used until the server rejects it, but never longer than this.
DEFAULT_LIFETIME = 3600.0
ALL_GRANTED = frozenset({"*"})  # cache key for refresh-token grants (one token, every granted scope)


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it (monotonic clock)."""

    access_token: str = field(repr=False)
    scopes: frozenset[str]
    expires_at: float
    lifetime: float

    def usable(self, now: float | None = None) -> bool:
        """False once inside the renewal margin: 10% of the lifetime, at least 1 s, at most 60 s."""
        margin = min(60.0, max(1.0, 0.1 * self.lifetime))
        return (time.monotonic() if now is None else now) < self.expires_at - margin


class RefreshTokenStore(Protocol):
    """Where a rotated refresh token is persisted so that it survives the worker process."""

    def load(self, config: SpotfireConnectionConfig) -> str | None: ...

    def save(self, config: SpotfireConnectionConfig, refresh_token: str) -> None: ...


def _fingerprint(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()[:16]


class VariableRefreshTokenStore:
    """Keeps rotated refresh tokens in the Airflow Variable ``spotfire_refresh_token__<conn_id>``.

    The Variable holds JSON ``{"refresh_token": ..., "origin": <fingerprint>}`` where ``origin`` is
    a fingerprint of the refresh token in the connection when the rotation happened: after a new
    ``airflow-spotfire login`` (which changes the connection) the stale Variable is ignored. The
    key contains "token", so Airflow masks the value in logs and the UI.
    """

    @staticmethod
    def key(config: SpotfireConnectionConfig) -> str:
        return f"spotfire_refresh_token__{config.conn_id}"

    def load(self, config: SpotfireConnectionConfig) -> str | None:
        raw = _variable_get(self.key(config))
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if data.get("origin") != _fingerprint(config.refresh_token):
            return None  # the connection got a new refresh token since: it wins
        return data.get("refresh_token") or None

    def save(self, config: SpotfireConnectionConfig, refresh_token: str) -> None:
        value = json.dumps({"refresh_token": refresh_token, "origin": _fingerprint(config.refresh_token)})
        _variable_set(self.key(config), value)
        log.info("Persisted the rotated Spotfire refresh token in Variable %s.", self.key(config))

    def clear(self, config: SpotfireConnectionConfig) -> None:
        """Forget a persisted token (after ``airflow-spotfire revoke``)."""
        from airflow.models.variable import Variable

        Variable.delete(self.key(config))


def _in_task_process() -> bool:
    """True inside a running task/trigger process, where the Task SDK talks to the supervisor."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _variable_get(key: str) -> str | None:
    """Read a Variable inside a task (Task SDK) or where the metadata DB is configured (CLI, UI)."""
    try:
        if _in_task_process():
            from airflow.sdk import Variable as SdkVariable

            return SdkVariable.get(key, default=None)
        from airflow.models.variable import Variable

        return Variable.get(key, default_var=None)
    except Exception:
        log.debug("No Variable backend reachable to read %s.", key)
        return None


def _variable_set(key: str, value: str) -> None:
    """Write a Variable inside a task (Task SDK) or where the metadata DB is configured."""
    description = "Rotated Spotfire refresh token, written by airflow-provider-spotfire (do not edit)"
    if _in_task_process():
        from airflow.sdk import Variable as SdkVariable

        SdkVariable.set(key, value, description=description)
        return
    from airflow.models.variable import Variable

    Variable.set(key, value, description=description)


class TokenManager:
    """Owns the access tokens (and refresh token) of one API client on one server."""

    _registry: dict[tuple[str, str, str], TokenManager] = {}
    _registry_lock = threading.Lock()

    def __init__(self, config: SpotfireConnectionConfig, store: RefreshTokenStore | None = None):
        self.config = config
        self.store = store
        self.token_requests = 0  # observable in tests and benchmarks
        self._tokens: dict[frozenset[str], Token] = {}
        self._token_url: str | None = None
        self._refresh_token: str | None = config.refresh_token
        self._refresh_loaded = store is None
        self._sync_lock = threading.RLock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def for_config(
        cls, config: SpotfireConnectionConfig, store: RefreshTokenStore | None = None
    ) -> TokenManager:
        """The process-wide manager for this server/client/grant/secret (created on first use)."""
        key = (config.cache_identity, _fingerprint(config.client_secret), _fingerprint(config.refresh_token))
        with cls._registry_lock:
            manager = cls._registry.get(key)
            if manager is None or manager.config != config:
                manager = cls(config, store)
                cls._registry[key] = manager
            return manager

    @classmethod
    def clear_all(cls) -> None:
        """Forget every cached token (tests; after rotating a client secret)."""
        with cls._registry_lock:
            cls._registry.clear()

    # ---- sans-IO: what to send, what to make of the answer ------------------------------------

    def scope_key(self, scopes: tuple[str, ...]) -> frozenset[str]:
        if self.config.grant_type == GRANT_REFRESH_TOKEN:
            return ALL_GRANTED
        return frozenset(self.config.scopes_override or scopes)

    def cached(self, key: frozenset[str]) -> Token | None:
        token = self._tokens.get(key)
        return token if token is not None and token.usable() else None

    def forget(self, access_token: str) -> None:
        """Drop ``access_token`` wherever it is cached (the server rejected it with a 401)."""
        for key in [k for k, t in self._tokens.items() if t.access_token == access_token]:
            del self._tokens[key]

    def metadata_request(self) -> HttpRequest:
        return HttpRequest("GET", self.config.metadata_url, headers={"Accept": "application/json"})

    def accept_metadata(self, response: HttpResponse | None) -> str:
        """Token endpoint from RFC 8414 metadata when offered, else Spotfire's documented default."""
        url = self.config.default_token_url
        if response is not None:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("token_endpoint"), str):
                url = body["token_endpoint"]
        self._token_url = url
        return url

    def token_request(self, key: frozenset[str]) -> HttpRequest:
        assert self._token_url is not None
        cfg = self.config
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        scope = None if key == ALL_GRANTED else sorted(key)
        secret_in_body = cfg.token_auth_method != AUTH_BASIC and cfg.client_secret
        if cfg.grant_type == GRANT_REFRESH_TOKEN:
            client: Any = WebApplicationClient(cfg.client_id)
            body = client.prepare_refresh_body(refresh_token=self._refresh_token, scope=scope)
            if secret_in_body or not cfg.client_secret:  # public clients identify themselves in the body
                body += "&client_id=" + quote(cfg.client_id, safe="")
        else:
            client = BackendApplicationClient(cfg.client_id)
            body = client.prepare_request_body(scope=scope, include_client_id=bool(secret_in_body))
        if secret_in_body:
            body += "&client_secret=" + quote(cfg.client_secret or "", safe="")
        elif cfg.client_secret:
            # RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
            raw = f"{quote(cfg.client_id, safe='')}:{quote(cfg.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode()
        return HttpRequest("POST", self._token_url, headers=headers, form=body)

    def accept_token(self, key: frozenset[str], response: HttpResponse) -> tuple[Token, str | None]:
        """Parse a 2xx token response; returns the token and a rotated refresh token, if any."""
        client = WebApplicationClient(self.config.client_id)
        try:
            data = client.parse_request_body_response(response.text)
        except Warning as w:  # oauthlib's "scope has changed" -- the server narrowed the scopes
            data = getattr(w, "token", None) or json.loads(response.text)
        except (OAuth2Error, ValueError) as exc:
            raise SpotfireAuthenticationError(
                f"The token endpoint answered {response.status_code} without a usable token "
                f"({type(exc).__name__}); check that the connection host is a Spotfire Server.",
                status_code=response.status_code,
                code=getattr(exc, "error", None),
                method="POST",
                path=self._token_path,
            ) from None
        access_token = data.get("access_token")
        if not access_token:
            raise SpotfireAuthenticationError(
                "The token endpoint answered without an access_token.",
                status_code=response.status_code,
                method="POST",
                path=self._token_path,
            )
        try:
            lifetime = float(data.get("expires_in") or DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME
        granted = data.get("scope")
        scopes = frozenset(granted if isinstance(granted, list) else str(granted or "").split()) or key
        token = Token(str(access_token), scopes, time.monotonic() + lifetime, lifetime)
        self._tokens[key] = token
        self.token_requests += 1
        rotated = data.get("refresh_token")
        if rotated and rotated != self._refresh_token:
            self._refresh_token = str(rotated)
            return token, str(rotated)
        return token, None

    @property
    def _token_path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self._token_url or self.config.default_token_url).path

    def _load_refresh_token(self) -> None:
        if self._refresh_loaded or self.config.grant_type != GRANT_REFRESH_TOKEN:
            self._refresh_loaded = True
            return
        self._refresh_loaded = True
        stored = self.store.load(self.config) if self.store else None
        if stored:
            self._refresh_token = stored
            mask(stored)

    def _explain(self, exc: SpotfireApiError, key: frozenset[str]) -> SpotfireError:
        if exc.status_code == 404:
            return token_endpoint_not_found(self.config, self._token_path)
        if exc.code == "invalid_scope" and key != ALL_GRANTED:
            exc.args = (f"{exc.args[0]} Requested scope(s): {' '.join(sorted(key))}.",)
        return exc

    # ---- sync ------------------------------------------------------------------------------

    def get_token(self, transport: SyncTransport, scopes: tuple[str, ...]) -> Token:
        """A usable token for ``scopes``: from the cache, or from the token endpoint (one at a time)."""
        key = self.scope_key(scopes)
        token = self.cached(key)
        if token is not None:
            return token
        with self._sync_lock:
            token = self.cached(key)
            if token is not None:
                return token
            self._load_refresh_token()
            if self._token_url is None:
                try:
                    meta: HttpResponse | None = transport.send(self.metadata_request(), idempotent=True)
                except SpotfireApiError:
                    meta = None  # no metadata offered: documented default endpoint
                self.accept_metadata(meta)
            try:
                response = transport.send(self.token_request(key), idempotent=self._idempotent)
            except SpotfireApiError as exc:
                raise self._explain(exc, key) from None
            token, rotated = self.accept_token(key, response)
            mask(token.access_token)
            if rotated:
                mask(rotated)
                self._persist(rotated)
            return token

    # ---- async -----------------------------------------------------------------------------

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._registry_lock:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = asyncio.Lock()
            return lock

    async def aget_token(self, transport: AsyncTransport, scopes: tuple[str, ...]) -> Token:
        """Async twin of :meth:`get_token`; never blocks the event loop."""
        key = self.scope_key(scopes)
        token = self.cached(key)
        if token is not None:
            return token
        async with self._async_lock():
            token = self.cached(key)
            if token is not None:
                return token
            if not self._refresh_loaded:
                await asyncio.to_thread(self._load_refresh_token)
            if self._token_url is None:
                try:
                    meta: HttpResponse | None = await transport.send(self.metadata_request(), idempotent=True)
                except SpotfireApiError:
                    meta = None
                self.accept_metadata(meta)
            try:
                response = await transport.send(self.token_request(key), idempotent=self._idempotent)
            except SpotfireApiError as exc:
                raise self._explain(exc, key) from None
            token, rotated = self.accept_token(key, response)
            await amask(token.access_token)
            if rotated:
                await amask(rotated)
                await asyncio.to_thread(self._persist, rotated)
            return token

    def _persist(self, rotated: str) -> None:
        if self.store is None:
            return
        try:
            self.store.save(self.config, rotated)
        except Exception as exc:  # keep working with the in-memory token; say loudly what to do
            log.error(
                "Spotfire issued a new refresh token for connection %r but it could not be persisted "
                "(%s). It is kept in memory for this process; if the process ends, run "
                "`airflow-spotfire login --conn-id %s` again.",
                self.config.conn_id,
                type(exc).__name__,
                self.config.conn_id,
            )

    @property
    def _idempotent(self) -> bool:
        # A refresh with rotation is not safe to repeat: a lost answer would leave a dead token.
        return self.config.grant_type != GRANT_REFRESH_TOKEN


__all__ = ["DEFAULT_LIFETIME", "RefreshTokenStore", "Token", "TokenManager", "VariableRefreshTokenStore"]
