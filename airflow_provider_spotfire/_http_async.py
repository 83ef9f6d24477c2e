"""The async HTTP driver (aiohttp) of the sans-IO layer in :mod:`._http`, used by the triggers.

aiohttp was chosen over httpx by measurement (``benchmarks/bench_automation_triggers.py``, see
docs/benchmarks.md): its C-accelerated HTTP parser and lighter connection pool cost well under half
the CPU per status poll of httpx/httpcore. Everything that decides *what* is sent and what an answer
means stays in :mod:`._http` and is shared with the sync (requests) path: :class:`HttpRequest`,
:class:`HttpResponse`, :func:`raise_for_response`, :func:`transport_error` and :class:`RetryPolicy`.
This module only does the I/O, with the sync path's settings:

* TLS verified by default, with the same CA bundle as requests (``REQUESTS_CA_BUNDLE``,
  ``CURL_CA_BUNDLE``, else certifi); a CA bundle path or ``verify=False`` as configured;
* the connection's ``timeout`` as connect and read timeout (requests' ``timeout=``);
* no redirects followed, proxies from the environment (``*_proxy``/``no_proxy``, as requests; no
  ``.netrc``), no cookies kept (one session is shared by
  every trigger of an event loop, whatever its connection), no retry but :class:`RetryPolicy`'s.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import urllib.request
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import certifi
import tenacity
from yarl import URL

from airflow_provider_spotfire._http import (
    USER_AGENT,
    HttpRequest,
    HttpResponse,
    RetryPolicy,
    _check_status,
    transport_error,
)

# Connections per session (one per event loop and TLS/timeout setting). Triggers cap their polls
# in flight below this, so requests do not queue inside the pool.
POOL_SIZE = 32


@functools.lru_cache(maxsize=16)
def ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """What aiohttp needs for ``verify``: False (no verification) or a verifying context.

    ``True`` uses the CA bundle requests uses for the same setting, so both paths trust the same
    servers; a string is the path of a CA bundle. Built once per setting and process (loading a
    bundle costs ~0.1 s of CPU; sessions come and go with the loop's waits).
    """
    if verify is False:
        return False
    if verify is True:
        cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    else:
        cafile = verify
    return ssl.create_default_context(cafile=cafile)


def new_async_client(*, verify: bool | str, timeout: float) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` for the running event loop (shared by every trigger of that loop)."""
    connector = aiohttp.TCPConnector(limit=POOL_SIZE, ssl=ssl_context(verify), ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,  # aiohttp would look proxies and netrc up in a thread on every request
        auto_decompress=True,
    )
    # aiohttp silently resends an idempotent request once when the connection drops; requests does
    # not (max_retries=0). Every retry is RetryPolicy's, on both paths, so that one is turned off
    # (no public switch exists for it).
    session._retry_connection = False
    return session


# One session per event loop and TLS/timeout setting: 1,000 triggers in one loop share one pool.
_SESSIONS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[bool | str, float], aiohttp.ClientSession]
] = weakref.WeakKeyDictionary()


def shared_async_client(verify: bool | str, timeout: float) -> aiohttp.ClientSession:
    """The running loop's session for (``verify``, ``timeout``), created on first use."""
    loop = asyncio.get_running_loop()
    for other in [lp for lp in _SESSIONS if lp.is_closed()]:
        # a finished loop (tests, dag.test()) cannot run close(); drop its sessions without I/O
        for session in _SESSIONS.pop(other).values():
            session.detach()
    sessions = _SESSIONS.setdefault(loop, {})
    key = (verify, timeout)
    existing = sessions.get(key)
    if existing is not None and not existing.closed:
        return existing
    session = sessions[key] = new_async_client(verify=verify, timeout=timeout)
    return session


async def close_shared_clients() -> None:
    """Close the running loop's sessions (the triggerer ends with its loop; tests call this)."""
    for session in _SESSIONS.pop(asyncio.get_running_loop(), {}).values():
        await session.close()


@functools.lru_cache(maxsize=64)
def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy requests would use for ``scheme://host`` (``*_proxy`` / ``no_proxy``), read once per host."""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def _url(url: str, params: Mapping[str, Any] | None) -> URL:
    """The URL with the query encoded byte for byte as requests encodes it.

    None values dropped, sequences repeated, ``str()`` of other values, ``urlencode`` quoting
    (``/`` as ``%2F``: yarl would leave it as is).
    """
    base = URL(url)
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((str(key), str(v)) for v in values if v is not None)
    if not pairs:
        return base
    return URL(f"{base}{'&' if base.query_string else '?'}{urlencode(pairs)}", encoded=True)


def _body(req: HttpRequest, headers: dict[str, str]) -> bytes | None:
    """The request body as bytes, with the Content-Type requests would send for it."""
    if req.content is not None:
        return req.content
    if req.form is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return req.form.encode("utf-8")
    if req.json is not None:
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(req.json).encode("utf-8")
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or ""


class AsyncTransport:
    """Sends :class:`HttpRequest` with a shared ``aiohttp.ClientSession``, with the sync path's retries."""

    def __init__(self, client: aiohttp.ClientSession, *, policy: RetryPolicy, client_id: str | None):
        self.client = client
        self.policy = policy
        self.client_id = client_id

    async def send_once(self, req: HttpRequest) -> HttpResponse:
        """One attempt; raises the same typed errors as :meth:`SyncTransport.send_once`."""
        headers = dict(req.headers)
        body = _body(req, headers)
        try:
            async with self.client.request(
                req.method,
                _url(req.url, req.params),
                headers=headers,
                data=body,
                allow_redirects=False,
                proxy=proxy_for(*_origin(req.url)),
            ) as r:
                response = HttpResponse(r.status, r.headers, await r.read())
        except aiohttp.ClientConnectorCertificateError as exc:  # the request never left
            raise transport_error(req.method, req.path, exc.certificate_error, sent=False) from None
        except aiohttp.ClientConnectorError as exc:
            # refused, DNS, TLS handshake: judged by the OS/ssl error, not by aiohttp's text (which
            # says "ssl:default" for every plain-HTTP connection)
            raise transport_error(req.method, req.path, exc.os_error, sent=False) from None
        except aiohttp.ConnectionTimeoutError as exc:
            raise transport_error(req.method, req.path, exc, sent=False) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(req.method, req.path, exc, sent=True) from None
        return _check_status(req, response, self.client_id)

    async def send(self, req: HttpRequest, *, idempotent: bool) -> HttpResponse:
        """Send with retries per the policy (same rules as the sync path)."""
        retrying = tenacity.AsyncRetrying(
            **self.policy.tenacity_kwargs(idempotent, f"{req.method} {req.path}")
        )
        return await retrying(self.send_once, req)


__all__ = [
    "AsyncTransport",
    "close_shared_clients",
    "new_async_client",
    "shared_async_client",
    "ssl_context",
]
