"""Run a token :data:`~airflow_provider_spotfire.oauth.effects.Flow` with sync or async I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import SyncTransport
from airflow_provider_spotfire._http_async import AsyncTransport
from airflow_provider_spotfire._secrets import amask, mask
from airflow_provider_spotfire.oauth.clock import Clock
from airflow_provider_spotfire.oauth.effects import (
    Effect,
    Flow,
    LoadGrant,
    LoadLease,
    SaveGrant,
    SaveLease,
    Send,
    Sleep,
)
from airflow_provider_spotfire.oauth.store import RefreshTokenStore, as_stored_grant

T = TypeVar("T")


def _store_call(
    effect: Effect, store: RefreshTokenStore | None, config: SpotfireConnectionConfig
) -> Callable[[], Any] | None:
    """The blocking store call an effect asks for (a no-op without a store); None if not a store effect."""
    if not isinstance(effect, LoadGrant | SaveGrant | LoadLease | SaveLease):
        return None
    if store is None:
        return lambda: None
    if isinstance(effect, LoadGrant):
        return lambda: as_stored_grant(store.load(config))
    if isinstance(effect, SaveGrant):
        return lambda: store.save(config, effect.grant)
    if isinstance(effect, LoadLease):
        return lambda: store.load_lease(config)
    return lambda: store.save_lease(config, effect.lease)


class _Stepper:
    """Feeds a flow the outcome of its last effect and hands out the next one."""

    def __init__(self, flow: Flow[Any]) -> None:
        self.flow = flow
        self.result: Any = None
        self.error: BaseException | None = None
        self.value: Any = None

    def next_effect(self) -> Effect | None:
        """The next effect, or None once the flow returned (its value is in ``value``)."""
        result, error, self.result, self.error = self.result, self.error, None, None
        try:
            return self.flow.throw(error) if error is not None else self.flow.send(result)
        except StopIteration as stop:
            self.value = stop.value
            return None


def run_sync(
    flow: Flow[T],
    transport: SyncTransport,
    store: RefreshTokenStore | None,
    config: SpotfireConnectionConfig,
    clock: Clock,
) -> T:
    """Drive ``flow`` in this thread."""

    def perform(effect: Effect) -> Any:
        if isinstance(effect, Send):
            if effect.once:
                return transport.send_once(effect.request)
            return transport.send(effect.request, idempotent=effect.idempotent)
        if isinstance(effect, Sleep):
            return clock.sleep(effect.seconds)
        call = _store_call(effect, store, config)
        if call is not None:
            return call()
        return mask(getattr(effect, "value", None))

    stepper = _Stepper(flow)
    while (effect := stepper.next_effect()) is not None:
        try:
            stepper.result = perform(effect)
        except Exception as exc:
            stepper.error = exc
    return stepper.value  # type: ignore[no-any-return]


async def run_async(
    flow: Flow[T],
    transport: AsyncTransport,
    store: RefreshTokenStore | None,
    config: SpotfireConnectionConfig,
    clock: Clock,
) -> T:
    """Drive ``flow`` in the event loop; blocking store calls run in a worker thread."""

    async def perform(effect: Effect) -> Any:
        if isinstance(effect, Send):
            if effect.once:
                return await transport.send_once(effect.request)
            return await transport.send(effect.request, idempotent=effect.idempotent)
        if isinstance(effect, Sleep):
            return await clock.asleep(effect.seconds)
        call = _store_call(effect, store, config)
        if call is not None:
            return await asyncio.to_thread(call)
        return await amask(getattr(effect, "value", None))

    stepper = _Stepper(flow)
    while (effect := stepper.next_effect()) is not None:
        try:
            stepper.result = await perform(effect)
        except Exception as exc:
            stepper.error = exc
    return stepper.value  # type: ignore[no-any-return]


__all__ = ["run_async", "run_sync"]
