"""Connection handling and the authenticated call loop shared by the sync and async hooks."""

from __future__ import annotations

import asyncio
import weakref
from functools import cached_property
from typing import Any, TypeVar

import httpx
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_spotfire._connection import (
    SpotfireConnectionConfig,
    connection_lookup_failed,
    warn_unverified_once,
)
from airflow_provider_spotfire._http import AsyncTransport, RetryPolicy, SyncTransport, new_async_client
from airflow_provider_spotfire._secrets import amask, mask
from airflow_provider_spotfire._tokens import (
    RefreshTokenStore,
    Token,
    TokenManager,
    VariableRefreshTokenStore,
)
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.exceptions import SpotfireApiError, SpotfireAuthenticationError

T = TypeVar("T")

DEFAULT_CONN_ID = "spotfire_default"


def _is_scope_refusal(exc: SpotfireApiError) -> bool:
    return exc.code in ("invalid_scope", "insufficient_scope", "unauthorized_client") or (
        exc.status_code == 403 and exc.code == "not_authorized"
    )


class _SpotfireHookCommon(BaseHook):
    """What both hooks share: connection fields, the token manager and scope choice."""

    conn_name_attr = "spotfire_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "spotfire"
    hook_name = "Spotfire"

    def __init__(
        self,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        *,
        retry_policy: RetryPolicy | None = None,
        refresh_token_store: RefreshTokenStore | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spotfire_conn_id = spotfire_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self.refresh_token_store = refresh_token_store or VariableRefreshTokenStore()
        self._config: SpotfireConnectionConfig | None = None
        # scopes alternatives -> the alternative the server granted (avoid re-asking a refused one)
        self._scope_choice: dict[tuple[str, ...], str] = {}

    def _use_config(self, config: SpotfireConnectionConfig) -> SpotfireConnectionConfig:
        for secret in config.secrets():
            mask(secret)
        self._config = config
        return config

    def _manager(self, config: SpotfireConnectionConfig) -> TokenManager:
        return TokenManager.for_config(config, self.refresh_token_store)

    def _scope_order(self, scopes: tuple[str, ...]) -> list[str]:
        chosen = self._scope_choice.get(scopes)
        return [chosen] if chosen else list(scopes)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Form layout for Airflow < 3.2, which reads it from the hook instead of the provider info.

        Those versions do not render our ``conn-fields``, so the Extra field stays visible there:
        grant_type, scopes, verify... are set as JSON in Extra.
        """
        from airflow_provider_spotfire.provider_info import get_provider_info

        ui = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": [f for f in ui["hidden-fields"] if f != "extra"],
            "relabeling": ui["relabeling"],
            "placeholders": ui["placeholders"],
        }


class SpotfireHookBase(_SpotfireHookCommon):
    """Synchronous core of :class:`SpotfireHook`: tokens, retries and typed errors (requests)."""

    @property
    def config(self) -> SpotfireConnectionConfig:
        """Parsed connection (read on first use: no I/O in ``__init__``)."""
        if self._config is None:
            conn = self.get_connection(self.spotfire_conn_id)
            self._use_config(SpotfireConnectionConfig.from_connection(conn))
        assert self._config is not None
        return self._config

    @cached_property
    def transport(self) -> SyncTransport:
        cfg = self.config
        warn_unverified_once(cfg)
        return SyncTransport(
            verify=cfg.verify, timeout=cfg.timeout, policy=self.retry_policy, client_id=cfg.client_id
        )

    @property
    def token_manager(self) -> TokenManager:
        return self._manager(self.config)

    def get_token(self, scopes: tuple[str, ...]) -> Token:
        """A cached or fresh access token for the first of ``scopes`` the API client is granted."""
        last: SpotfireApiError | None = None
        for scope in self._scope_order(scopes):
            try:
                token = self.token_manager.get_token(self.transport, (scope,))
            except SpotfireApiError as exc:
                if len(scopes) > 1 and _is_scope_refusal(exc):
                    last = exc
                    continue
                raise
            self._scope_choice[scopes] = scope
            return token
        assert last is not None
        raise last

    def call(self, request: ApiRequest[T]) -> T:
        """Send ``request`` with a bearer token; on a 401 renew the token once and retry."""
        token = self.get_token(request.scopes)
        try:
            response = self.transport.send(
                request.to_http(self.config, token.access_token), idempotent=request.idempotent
            )
        except SpotfireAuthenticationError as exc:
            if exc.status_code != 401:
                raise
            self.token_manager.forget(token.access_token)
            token = self.get_token(request.scopes)
            response = self.transport.send(
                request.to_http(self.config, token.access_token), idempotent=request.idempotent
            )
        return request.parse(response)

    def close(self) -> None:
        """Close pooled HTTP connections."""
        if "transport" in self.__dict__:
            self.transport.close()
            del self.__dict__["transport"]


# One httpx client per event loop and TLS/timeout setting: 1,000 triggers in one loop share a
# connection pool instead of opening 1,000.
_ASYNC_CLIENTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, float], httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def _shared_async_client(verify: bool | str, timeout: float) -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    clients = _ASYNC_CLIENTS.setdefault(loop, {})
    key = (verify, timeout)
    client = clients.get(key)
    if client is None or client.is_closed:
        client = clients[key] = new_async_client(verify=verify, timeout=timeout)
    return client


class SpotfireAsyncHookBase(_SpotfireHookCommon):
    """Asynchronous core of :class:`SpotfireAsyncHook` (httpx), for triggers: nothing blocks the loop."""

    async def aconfig(self) -> SpotfireConnectionConfig:
        """Parsed connection, fetched with common-compat's ``get_async_connection``."""
        if self._config is None:
            from airflow.providers.common.compat.connection import get_async_connection

            try:
                conn = await get_async_connection(self.spotfire_conn_id, hook=self)
            except Exception as exc:
                raise connection_lookup_failed(self.spotfire_conn_id, exc) from exc
            config = SpotfireConnectionConfig.from_connection(conn)
            for secret in config.secrets():
                await amask(secret)
            self._config = config
        return self._config

    async def transport(self) -> AsyncTransport:
        cfg = await self.aconfig()
        warn_unverified_once(cfg)
        client = _shared_async_client(cfg.verify, cfg.timeout)
        return AsyncTransport(client, policy=self.retry_policy, client_id=cfg.client_id)

    async def get_token(self, scopes: tuple[str, ...]) -> Token:
        """Async twin of :meth:`SpotfireHookBase.get_token`."""
        cfg = await self.aconfig()
        transport = await self.transport()
        manager = self._manager(cfg)
        last: SpotfireApiError | None = None
        for scope in self._scope_order(scopes):
            try:
                token = await manager.aget_token(transport, (scope,))
            except SpotfireApiError as exc:
                if len(scopes) > 1 and _is_scope_refusal(exc):
                    last = exc
                    continue
                raise
            self._scope_choice[scopes] = scope
            return token
        assert last is not None
        raise last

    async def call(self, request: ApiRequest[T]) -> T:
        """Async twin of :meth:`SpotfireHookBase.call`."""
        cfg = await self.aconfig()
        transport = await self.transport()
        token = await self.get_token(request.scopes)
        try:
            response = await transport.send(
                request.to_http(cfg, token.access_token), idempotent=request.idempotent
            )
        except SpotfireAuthenticationError as exc:
            if exc.status_code != 401:
                raise
            self._manager(cfg).forget(token.access_token)
            token = await self.get_token(request.scopes)
            response = await transport.send(
                request.to_http(cfg, token.access_token), idempotent=request.idempotent
            )
        return request.parse(response)
