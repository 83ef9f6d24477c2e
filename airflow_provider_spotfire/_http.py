"""HTTP plumbing written once for the sync (requests) and async (aiohttp, :mod:`._http_async`) clients.

* :class:`HttpRequest` / :class:`HttpResponse` -- what is sent and what came back, library-neutral.
* :func:`raise_for_response` -- turns any 4xx/5xx (Spotfire ``{"error": {...}}``, OAuth2
  ``{"error": "..."}``, RFC 6750 ``WWW-Authenticate`` or no body at all) into a typed exception.
* :class:`RetryPolicy` -- which failures are retried and how long to wait (tenacity), shared by
  :class:`SyncTransport` and :class:`._http_async.AsyncTransport`, which only do the I/O.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import socket
import ssl
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity
import urllib3

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._connection import is_plain_http_answer, plain_http_message
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireTLSError,
    SpotfireTransportError,
    exception_class_for,
)

log = logging.getLogger(__name__)

USER_AGENT = "airflow-provider-spotfire"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# 429 and 503 mean the server refused the request without acting on it (Spotfire: "Job number
# limit exceeded", "Server busy"), so they are retried even for requests that are not idempotent.
REFUSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request to send. ``content`` is sent as is; ``form`` is form-encoded."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    form: str | None = None

    @property
    def path(self) -> str:
        """The URL path (for errors and logs: never the query string, which may carry data)."""
        return urlsplit(self.url).path


@dataclass(frozen=True)
class HttpResponse:
    """A received response, reduced to what the parsers need."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """Decoded JSON body, or ``None`` for an empty body."""
        if not self.content or not self.content.strip():
            return None
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date, RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_BEARER_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _error_fields(response: HttpResponse) -> tuple[str | None, str | None, str | None]:
    """(code, description, needed_scope) from a Spotfire, OAuth2 or RFC 6750 error response."""
    code = description = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # Spotfire ErrorResponse
            code = err.get("code")
            description = err.get("description")
        elif isinstance(err, str):  # OAuth2 (RFC 6749 5.2)
            code = err
            description = body.get("error_description")
    scope = None
    challenge = response.headers.get("WWW-Authenticate") or ""
    if challenge.lower().startswith("bearer"):
        params = dict(_BEARER_PARAM.findall(challenge))
        code = code or params.get("error")
        description = description or params.get("error_description")
        scope = params.get("scope")
    if code is not None:
        code = str(code)
    if description is not None:
        description = str(description)
    return code, description, scope


def _advice(status: int, code: str | None, scope: str | None, client_id: str | None) -> str:
    who = f"API client {client_id!r}" if client_id else "the API client"
    if code in ("invalid_scope", "insufficient_scope") or (status == 403 and scope):
        needed = f" {scope}" if scope else ""
        return (
            f"{who} is not allowed the scope{needed}: register it for that scope "
            f"(register-api-client ... -S{scope or '<scope>'}) or ask the Spotfire administrator."
        )
    if code == "invalid_client":
        return "Check the client id (Login) and client secret (Password) of the Spotfire connection."
    if code == "invalid_grant":
        return "The refresh token is invalid, expired or revoked: run `airflow-spotfire login` again."
    if code == "unauthorized_client":
        return (
            f"{who} is not registered for this grant type: profile 'other' uses client_credentials, "
            "profiles web/native use authorization_code and refresh_token."
        )
    if status == 401:
        return "The access token was rejected; check that the connection points at the right server."
    if status == 403:
        return f"{who} lacks the library permission or role this call needs (e.g. folder write access)."
    if status in (429, 503):
        return "The server is busy; retry later or lower the parallelism."
    return ""


def raise_for_response(
    method: str, path: str, response: HttpResponse, *, client_id: str | None = None
) -> None:
    """Raise the typed :class:`SpotfireApiError` subclass for a 4xx/5xx response; no-op otherwise."""
    status = response.status_code
    if status < 400:
        return
    code, description, scope = _error_fields(response)
    cls = exception_class_for(status, code)
    parts = [f"Spotfire answered {status}" + (f" {code}" if code else "") + f" to {method} {path}"]
    if description:
        parts.append(description.rstrip("."))
    advice = _advice(status, code, scope, client_id)
    if advice:
        parts.append(advice)
    raise cls(
        ": ".join(parts[:2]) + (". " + parts[2] if len(parts) > 2 else ""),
        status_code=status,
        code=code,
        description=description,
        method=method,
        path=path,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: ``__cause__``, ``__context__``, urllib3's ``reason``, ``args``."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        stack.extend(e for e in wrapped if isinstance(e, BaseException))


def _loaded(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """Exception classes of an async client library, if it is imported (else it raised none of them)."""
    loaded = sys.modules.get(module)
    found = (getattr(loaded, name, None) for name in names) if loaded is not None else ()
    return tuple(cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException))


def _tls_exception_types() -> tuple[type[BaseException], ...]:
    return (
        ssl.SSLError,
        ssl.CertificateError,
        requests.exceptions.SSLError,
        urllib3.exceptions.SSLError,
        *_loaded("aiohttp", "ClientSSLError"),
    )


def _not_sent_exception_types() -> tuple[type[BaseException], ...]:
    """The connection was never made, so the request never left: DNS failure, refusal, connect timeout."""
    return (
        urllib3.exceptions.NewConnectionError,  # NameResolutionError is a subclass
        urllib3.exceptions.ConnectTimeoutError,
        requests.exceptions.ConnectTimeout,
        ConnectionRefusedError,
        socket.gaierror,
        *_loaded("aiohttp", "ClientConnectorError", "ConnectionTimeoutError"),
        *_loaded("httpx", "ConnectError", "ConnectTimeout"),
    )


def is_tls_failure(exc: BaseException) -> bool:
    """Whether a send failed in TLS (certificate, handshake), judged by the exception types it chains."""
    tls = _tls_exception_types()
    return any(isinstance(e, tls) for e in _exception_chain(exc))


def never_sent(exc: BaseException) -> bool:
    """Whether a send failed before the request could reach the server (no connection, or TLS)."""
    not_sent = _not_sent_exception_types()
    return is_tls_failure(exc) or any(isinstance(e, not_sent) for e in _exception_chain(exc))


def transport_error(method: str, path: str, exc: BaseException, *, sent: bool) -> SpotfireTransportError:
    """A :class:`SpotfireTransportError` for a failed send; ``sent`` says the server may have acted.

    TLS failures (by exception type, anywhere in the chain) become :class:`SpotfireTLSError`.
    """
    text = str(exc)
    if is_plain_http_answer(exc):
        return SpotfireTLSError(plain_http_message(method, path), request_sent=False)
    if is_tls_failure(exc):
        return SpotfireTLSError(
            f"TLS verification failed for {method} {path}: {_short(text)}. Install the server's CA "
            "bundle and point the connection extra `verify` at it (verification stays on by default).",
            request_sent=False,
        )
    return SpotfireTransportError(
        f"Could not reach Spotfire for {method} {path}: {type(exc).__name__}: {_short(text)}. "
        "Check the host/port of the connection and that the server is up.",
        request_sent=sent,
    )


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter that honours ``Retry-After``.

    Retried: 429, 502, 503, 504 and connection errors, for requests that are safe to repeat;
    requests that are not (e.g. starting a job) are retried only when the server certainly did
    not act: 429/503 refusals and connections that failed before the request was sent.
    """

    max_attempts: int = 6
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 300.0
    max_total_wait: float = 900.0

    def __post_init__(self) -> None:
        validate.backoff_fields(
            self, "max_attempts", "initial_backoff", "max_backoff", "max_retry_after", "max_total_wait"
        )

    def is_retryable(self, exc: BaseException, idempotent: bool) -> bool:
        if isinstance(exc, SpotfireTLSError):
            return False
        if isinstance(exc, SpotfireTransportError):
            return idempotent or not exc.request_sent
        if isinstance(exc, SpotfireApiError):
            if idempotent:
                return exc.status_code in RETRYABLE_STATUSES
            return exc.status_code in REFUSED_STATUSES
        return False

    def backoff(self, attempt: int, exc: BaseException | None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after)
        cap = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)

    def tenacity_kwargs(self, idempotent: bool, on_retry_log: str) -> dict[str, Any]:
        def _wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.backoff(state.attempt_number, exc)

        def _before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs",
                on_retry_log,
                _describe(exc),
                state.attempt_number,
                self.max_attempts - 1,
                state.upcoming_sleep,
            )

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self.max_total_wait),
            "wait": _wait,
            "retry": tenacity.retry_if_exception(lambda e: self.is_retryable(e, idempotent)),
            "reraise": True,
            "before_sleep": _before_sleep,
        }


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, SpotfireApiError):
        return f"HTTP {exc.status_code} {exc.code or ''}".strip()
    return type(exc).__name__ if exc else "?"


def _check_status(req: HttpRequest, response: HttpResponse, client_id: str | None) -> HttpResponse:
    raise_for_response(req.method, req.path, response, client_id=client_id)
    return response


class SyncTransport:
    """Sends :class:`HttpRequest` with ``requests`` (one pooled session), applying the retry policy."""

    def __init__(self, *, verify: bool | str, timeout: float, policy: RetryPolicy, client_id: str | None):
        self.policy = policy
        self.timeout = timeout
        self.client_id = client_id
        self.verify = verify
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def send_once(self, req: HttpRequest) -> HttpResponse:
        """One attempt; raises typed errors for transport failures and 4xx/5xx."""
        data: Any = req.content if req.content is not None else req.form
        try:
            r = self.session.request(
                req.method,
                req.url,
                params=req.params,
                headers=dict(req.headers),
                json=req.json,
                data=data,
                timeout=self.timeout,
                verify=self.verify,  # explicit: REQUESTS_CA_BUNDLE must not override verify=False
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            raise transport_error(req.method, req.path, exc, sent=not never_sent(exc)) from None
        response = HttpResponse(r.status_code, r.headers, r.content)
        return _check_status(req, response, self.client_id)

    def send(self, req: HttpRequest, *, idempotent: bool) -> HttpResponse:
        """Send with retries per the policy."""
        retrying = tenacity.Retrying(**self.policy.tenacity_kwargs(idempotent, f"{req.method} {req.path}"))
        return retrying(self.send_once, req)

    def close(self) -> None:
        self.session.close()


__all__ = [
    "HttpRequest",
    "HttpResponse",
    "RetryPolicy",
    "SyncTransport",
    "is_tls_failure",
    "never_sent",
    "parse_retry_after",
    "raise_for_response",
]
