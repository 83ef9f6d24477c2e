"""Sans-IO flows: the call loop, the scope fallback and every hook operation, written once.

A flow is a generator, like ``httpx.Auth.auth_flow``: it yields *steps* (what it needs done) and
receives their results, or has their exception thrown in. It does no I/O itself, so
:class:`~.hooks.base.SpotfireHookBase` (requests) and :class:`~.hooks.base.SpotfireAsyncHookBase`
(aiohttp) run the same flow with drivers of a few lines each.

Two levels of steps:

* An **operation** (a hook method such as ``get_automation_job_status``) yields
  :class:`~airflow_provider_spotfire.api.base.ApiRequest` (answered with the parsed result),
  :class:`TokenFor` (a token, with scope fallback), :class:`ReadConfig` (the connection) and
  :class:`Sleep`.
* :func:`operation_flow` turns those into **driver steps**: :class:`FetchToken`,
  :class:`ForgetToken`, :class:`Send` and :class:`Sleep`, which are all a driver performs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire._steps import Send, Sleep
from airflow_provider_spotfire._tokens import Token
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.exceptions import SpotfireApiError, SpotfireAuthenticationError

T = TypeVar("T")


# --------------------------------------------------------------------------------------- operation steps
@dataclass(frozen=True)
class TokenFor:
    """Operation step: a token for the first of ``scopes`` the API client is granted."""

    scopes: tuple[str, ...]


@dataclass(frozen=True)
class ReadConfig:
    """Operation step: the parsed connection (:class:`SpotfireConnectionConfig`)."""


# --------------------------------------------------------------------------------------- driver steps
@dataclass(frozen=True)
class FetchToken:
    """Driver step: a cached or new token for exactly ``scope`` (``TokenManager.get_token``)."""

    scope: str


@dataclass(frozen=True)
class ForgetToken:
    """Driver step: drop ``access_token`` from the cache (the server rejected it)."""

    access_token: str


OperationStep = ApiRequest[Any] | TokenFor | ReadConfig | Sleep
DriverStep = FetchToken | ForgetToken | Send | Sleep
Operation = Generator[OperationStep, Any, T]
"""A hook operation: yields operation steps, returns the method's result."""
DriverFlow = Generator[DriverStep, Any, T]


# --------------------------------------------------------------------------------------- flows
def is_scope_refusal(exc: SpotfireApiError) -> bool:
    """The server refused the scope itself (so another acceptable scope may still be granted)."""
    return exc.code in ("invalid_scope", "insufficient_scope", "unauthorized_client") or (
        exc.status_code == 403 and exc.code == "not_authorized"
    )


def token_flow(scopes: tuple[str, ...], scope_choice: dict[tuple[str, ...], str]) -> DriverFlow[Token]:
    """A token for the first of ``scopes`` granted; remembers the choice in ``scope_choice``."""
    chosen = scope_choice.get(scopes)
    last: SpotfireApiError | None = None
    for scope in [chosen] if chosen else scopes:
        try:
            token: Token = yield FetchToken(scope)
        except SpotfireApiError as exc:
            if len(scopes) > 1 and is_scope_refusal(exc):
                last = exc
                continue
            raise
        scope_choice[scopes] = scope
        return token
    assert last is not None
    raise last


def call_flow(
    request: ApiRequest[T], config: SpotfireConnectionConfig, scope_choice: dict[tuple[str, ...], str]
) -> DriverFlow[T]:
    """Send ``request`` with a bearer token; on a 401 forget the token, get another and send once more."""
    token = yield from token_flow(request.scopes, scope_choice)
    try:
        response: HttpResponse = yield Send(request.to_http(config, token.access_token), request.idempotent)
    except SpotfireAuthenticationError as exc:
        if exc.status_code != 401:
            raise
        yield ForgetToken(token.access_token)
        token = yield from token_flow(request.scopes, scope_choice)
        response = yield Send(request.to_http(config, token.access_token), request.idempotent)
    return request.parse(response)


def single_call(request: ApiRequest[T]) -> Operation[T]:
    """The operation of one API request (what ``hook.call(request)`` runs)."""
    return (yield request)


def token_operation(scopes: tuple[str, ...]) -> Operation[Token]:
    """The operation of getting a token (what ``hook.get_token(scopes)`` runs)."""
    token: Token = yield TokenFor(scopes)
    return token


def operation_flow(
    operation: Operation[T], config: SpotfireConnectionConfig, scope_choice: dict[tuple[str, ...], str]
) -> DriverFlow[T]:
    """Run ``operation``, turning its steps into driver steps (requests into :func:`call_flow`)."""
    stepper, reply = Stepper(operation), Reply()
    while (step := stepper.advance(reply)) is not None:
        try:
            if isinstance(step, ApiRequest):
                value = yield from call_flow(step, config, scope_choice)
            elif isinstance(step, TokenFor):
                value = yield from token_flow(step.scopes, scope_choice)
            elif isinstance(step, ReadConfig):
                value = config
            else:
                value = yield step
        except Exception as exc:  # handed to the operation, which may handle it
            reply = Reply(error=exc)
        else:
            reply = Reply(value)
    return stepper.result


@dataclass(frozen=True)
class Reply:
    """The result of a step (or its exception), to resume a flow with."""

    value: Any = None
    error: Exception | None = None


class Stepper(Generic[T]):
    """Advances one flow: hands it a :class:`Reply`, gets its next step or, at the end, its result."""

    def __init__(self, flow: Generator[Any, Any, T]) -> None:
        self.flow = flow
        self.result: T

    def advance(self, reply: Reply) -> Any:
        """The flow's next step, or ``None`` when it returned (its value is then :attr:`result`)."""
        try:
            if reply.error is not None:
                return self.flow.throw(reply.error)
            return self.flow.send(reply.value)
        except StopIteration as stop:
            self.result = stop.value
            return None


def drive(flow: DriverFlow[T], perform: Callable[[DriverStep], Any]) -> T:
    """Run a flow synchronously: ``perform`` does each step's I/O."""
    stepper, reply = Stepper(flow), Reply()
    while (step := stepper.advance(reply)) is not None:
        try:
            reply = Reply(perform(step))
        except Exception as exc:
            reply = Reply(error=exc)
    return stepper.result


async def adrive(flow: DriverFlow[T], perform: Callable[[DriverStep], Awaitable[Any]]) -> T:
    """Run a flow on the event loop: ``perform`` awaits each step's I/O."""
    stepper, reply = Stepper(flow), Reply()
    while (step := stepper.advance(reply)) is not None:
        try:
            reply = Reply(await perform(step))
        except Exception as exc:
            reply = Reply(error=exc)
    return stepper.result


__all__ = [
    "DriverStep",
    "FetchToken",
    "ForgetToken",
    "Operation",
    "OperationStep",
    "ReadConfig",
    "Send",
    "Sleep",
    "TokenFor",
    "adrive",
    "call_flow",
    "drive",
    "operation_flow",
    "single_call",
    "token_flow",
    "token_operation",
]
