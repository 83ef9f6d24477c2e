"""The two hook cores: connection, tokens and the drivers that run the sans-IO flows.

:class:`SpotfireHookBase` (requests) and :class:`SpotfireAsyncHookBase` (aiohttp) each run the
flows of :mod:`~airflow_provider_spotfire.hooks.flow` with a driver of a few lines; an API method
is written once, as an operation flow wrapped in :class:`hook_operation`, and becomes a sync
method on one hook and an awaitable one on the other.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from functools import cached_property
from typing import Any, Generic, ParamSpec, Self, TypeVar, overload

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_spotfire._connection import (
    DEFAULT_CONN_ID,
    SpotfireConnectionConfig,
    connection_lookup_failed,
    warn_unverified_once,
)
from airflow_provider_spotfire._http import RetryPolicy, SyncTransport
from airflow_provider_spotfire._http_async import AsyncTransport, shared_async_client
from airflow_provider_spotfire._secrets import amask, mask
from airflow_provider_spotfire._tokens import (
    RefreshTokenStore,
    Token,
    TokenManager,
    VariableRefreshTokenStore,
)
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.hooks.flow import (
    DriverStep,
    FetchToken,
    ForgetToken,
    Operation,
    Send,
    adrive,
    drive,
    operation_flow,
    single_call,
    token_operation,
)
from airflow_provider_spotfire.provider_info import get_provider_info

T = TypeVar("T")
P = ParamSpec("P")


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

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Form layout for Airflow < 3.2, which reads it from the hook instead of the provider info.

        Those versions do not render our ``conn-fields``, so the Extra field stays visible there:
        grant_type, scopes, verify... are set as JSON in Extra.
        """
        ui = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": [f for f in ui["hidden-fields"] if f != "extra"],
            "relabeling": ui["relabeling"],
            "placeholders": ui["placeholders"],
        }


class SpotfireHookBase(_SpotfireHookCommon):
    """Synchronous core of :class:`SpotfireHook`: runs flows with ``requests`` (tokens, retries, typed errors)."""

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
        """The pooled ``requests`` transport (built on first use)."""
        cfg = self.config
        warn_unverified_once(cfg)
        return SyncTransport(
            verify=cfg.verify, timeout=cfg.timeout, policy=self.retry_policy, client_id=cfg.client_id
        )

    @property
    def token_manager(self) -> TokenManager:
        return self._manager(self.config)

    def run(self, operation: Operation[T]) -> T:
        """Run an operation flow (see :mod:`~airflow_provider_spotfire.hooks.flow`) to its result."""
        return drive(operation_flow(operation, self.config, self._scope_choice), self._perform)

    def _perform(self, step: DriverStep) -> Any:
        if isinstance(step, Send):
            return self.transport.send(step.request, idempotent=step.idempotent)
        if isinstance(step, FetchToken):
            return self.token_manager.get_token(self.transport, (step.scope,))
        if isinstance(step, ForgetToken):
            return self.token_manager.forget(step.access_token)
        time.sleep(step.seconds)
        return None

    def get_token(self, scopes: tuple[str, ...]) -> Token:
        """A cached or fresh access token for the first of ``scopes`` the API client is granted."""
        return self.run(token_operation(scopes))

    def call(self, request: ApiRequest[T]) -> T:
        """Send ``request`` with a bearer token; on a 401 renew the token once and retry."""
        return self.run(single_call(request))

    def close(self) -> None:
        """Close pooled HTTP connections."""
        if "transport" in self.__dict__:
            self.transport.close()
            del self.__dict__["transport"]


class SpotfireAsyncHookBase(_SpotfireHookCommon):
    """Asynchronous core of :class:`SpotfireAsyncHook` (aiohttp), for triggers: nothing blocks the loop.

    The same flows as :class:`SpotfireHookBase`, awaited. Naming rule of the two hooks: what the
    sync hook offers as a property (``config``, ``transport``) the async hook offers as a coroutine
    with an ``a`` prefix (``await aconfig()``, ``await atransport()``), because reading the
    connection is I/O there; methods keep their names (``call``, ``get_token``, ``run``) and
    return awaitables.
    """

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

    def with_retry_policy(self, policy: RetryPolicy) -> Self:
        """This hook with other retry limits, sharing its connection (no second lookup once it was read)."""
        hook = type(self)(
            self.spotfire_conn_id, retry_policy=policy, refresh_token_store=self.refresh_token_store
        )
        hook._config = self._config
        hook._scope_choice = self._scope_choice
        return hook

    async def atransport(self) -> AsyncTransport:
        """An aiohttp transport on the event loop's shared session."""
        cfg = await self.aconfig()
        warn_unverified_once(cfg)
        client = shared_async_client(cfg.verify, cfg.timeout)
        return AsyncTransport(client, policy=self.retry_policy, client_id=cfg.client_id)

    async def run(self, operation: Operation[T]) -> T:
        """Async twin of :meth:`SpotfireHookBase.run`: the same flow, awaited."""
        config = await self.aconfig()
        transport = await self.atransport()
        manager = self._manager(config)

        async def perform(step: DriverStep) -> Any:
            if isinstance(step, Send):
                return await transport.send(step.request, idempotent=step.idempotent)
            if isinstance(step, FetchToken):
                return await manager.aget_token(transport, (step.scope,))
            if isinstance(step, ForgetToken):
                return manager.forget(step.access_token)
            await asyncio.sleep(step.seconds)
            return None

        return await adrive(operation_flow(operation, config, self._scope_choice), perform)

    async def get_token(self, scopes: tuple[str, ...]) -> Token:
        """Async twin of :meth:`SpotfireHookBase.get_token`."""
        return await self.run(token_operation(scopes))

    async def call(self, request: ApiRequest[T]) -> T:
        """Async twin of :meth:`SpotfireHookBase.call`."""
        return await self.run(single_call(request))


class hook_operation(Generic[P, T]):
    """One definition of a hook method for both hooks, from an operation flow.

    ``get_status = hook_operation(flows.get_status)`` in a mixin gives ``SpotfireHook`` a method
    that runs the flow to its result and ``SpotfireAsyncHook`` one that returns an awaitable.
    """

    def __init__(self, flow: Callable[P, Operation[T]]) -> None:
        self.flow = flow
        self.__doc__ = flow.__doc__
        self.__wrapped__ = flow

    @overload
    def __get__(self, hook: None, owner: type) -> hook_operation[P, T]: ...
    @overload
    def __get__(self, hook: SpotfireAsyncHookBase, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, hook: SpotfireHookBase, owner: type) -> Callable[P, T]: ...
    def __get__(self, hook: Any, owner: type) -> Any:
        if hook is None:
            return self
        flow = self.flow

        @functools.wraps(flow)
        def method(*args: Any, **kwargs: Any) -> Any:
            return hook.run(flow(*args, **kwargs))

        return method


__all__ = ["DEFAULT_CONN_ID", "SpotfireAsyncHookBase", "SpotfireHookBase", "hook_operation"]
