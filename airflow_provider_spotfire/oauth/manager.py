"""TokenManager: the one owner of a connection's access tokens in a process, for sync and async callers."""

from __future__ import annotations

import asyncio
import threading
import weakref

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import SyncTransport
from airflow_provider_spotfire._http_async import AsyncTransport
from airflow_provider_spotfire.oauth.clock import SYSTEM_CLOCK, Clock
from airflow_provider_spotfire.oauth.drivers import run_async, run_sync
from airflow_provider_spotfire.oauth.effects import Flow
from airflow_provider_spotfire.oauth.fetch import TokenEndpoint
from airflow_provider_spotfire.oauth.grants import grant_for
from airflow_provider_spotfire.oauth.lease import LeaseTimings, SharedGrantFlow
from airflow_provider_spotfire.oauth.store import RefreshTokenStore, StoredGrant, fingerprint
from airflow_provider_spotfire.oauth.token import Token


class TokenManager:
    """Owns the access tokens (and refresh token) of one API client on one server.

    Tokens are cached per scope set and renewed ahead of expiry; a 401 from an API call
    invalidates exactly the token that was used. Grants marked ``shared`` (refresh_token) go
    through the store so that every process of the deployment shares one access token and one
    refresh at a time (:mod:`airflow_provider_spotfire.oauth.lease`).
    """

    _registry: dict[tuple[str, str, str], TokenManager] = {}
    _registry_lock = threading.Lock()
    default_clock: Clock = SYSTEM_CLOCK  # what for_config injects (tests replace it)
    default_timings: LeaseTimings | None = None  # None: LeaseTimings()

    def __init__(
        self,
        config: SpotfireConnectionConfig,
        store: RefreshTokenStore | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        timings: LeaseTimings | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.grant = grant_for(config)
        self.endpoint = TokenEndpoint(config, self.grant)
        self.shared = SharedGrantFlow(
            config, self.endpoint, clock, timings or LeaseTimings(), coordinated=store is not None
        )
        self._tokens: dict[frozenset[str], Token] = {}
        self._sync_lock = threading.RLock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def for_config(
        cls, config: SpotfireConnectionConfig, store: RefreshTokenStore | None = None
    ) -> TokenManager:
        """The process-wide manager for this server/client/grant/secret (created on first use)."""
        key = (config.cache_identity, fingerprint(config.client_secret), fingerprint(config.refresh_token))
        with cls._registry_lock:
            manager = cls._registry.get(key)
            if manager is None or manager.config != config:
                manager = cls(config, store, clock=cls.default_clock, timings=cls.default_timings)
                cls._registry[key] = manager
            return manager

    @classmethod
    def clear_all(cls) -> None:
        """Forget every cached token (tests; after rotating a client secret)."""
        with cls._registry_lock:
            cls._registry.clear()

    @property
    def token_requests(self) -> int:
        """Token requests this manager made that were answered with a token."""
        return self.endpoint.requests

    def scope_key(self, scopes: tuple[str, ...]) -> frozenset[str]:
        return self.grant.cache_key(self.config, scopes)

    def cached(self, key: frozenset[str]) -> Token | None:
        token = self._tokens.get(key)
        return token if token is not None and token.usable(self.clock.monotonic()) else None

    def forget(self, access_token: str) -> None:
        """Drop ``access_token`` wherever it is cached (the server rejected it with a 401)."""
        self.shared.rejected.add(fingerprint(access_token))
        for key in [k for k, t in self._tokens.items() if t.access_token == access_token]:
            del self._tokens[key]

    def token_flow(self, key: frozenset[str]) -> Flow[Token]:
        """The sans-IO flow that yields a usable token for ``key`` (both drivers run it)."""
        if self.grant.shared:
            record = yield from self.shared.flow()
            return self._remember_shared(key, record)
        result = yield from self.endpoint.request_flow(key)
        lifetime = result.expires_in
        token = Token(result.access_token, result.scopes or key, self.clock.monotonic() + lifetime, lifetime)
        self._tokens[key] = token
        return token

    def _remember_shared(self, key: frozenset[str], record: StoredGrant) -> Token:
        assert record.access_token is not None and record.expires_at is not None
        remaining = record.expires_at - self.clock.time()
        lifetime = record.lifetime or remaining
        # another host's clock may run behind ours: never trust more than one lifetime
        expires_at = self.clock.monotonic() + min(remaining, lifetime)
        token = Token(record.access_token, frozenset(record.scopes) or key, expires_at, lifetime)
        self._tokens[key] = token
        return token

    def get_token(self, transport: SyncTransport, scopes: tuple[str, ...]) -> Token:
        """A usable token for ``scopes``: from the cache, or fetched (one fetch at a time)."""
        key = self.scope_key(scopes)
        token = self.cached(key)
        if token is not None:
            return token
        with self._sync_lock:
            token = self.cached(key)
            if token is not None:
                return token
            return run_sync(self.token_flow(key), transport, self.store, self.config, self.clock)

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._registry_lock:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = asyncio.Lock()
            return lock

    async def aget_token(self, transport: AsyncTransport, scopes: tuple[str, ...]) -> Token:
        """The same as :meth:`get_token` for the event loop; never blocks it."""
        key = self.scope_key(scopes)
        token = self.cached(key)
        if token is not None:
            return token
        async with self._async_lock():
            token = self.cached(key)
            if token is not None:
                return token
            return await run_async(self.token_flow(key), transport, self.store, self.config, self.clock)


__all__ = ["TokenManager"]
