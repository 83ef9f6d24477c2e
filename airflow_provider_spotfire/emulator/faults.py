"""Fault-injection middleware of the emulator (503 / 429 / dropped connections / latency).

Applies to requests whose path starts with one of ``config.fault_path_prefixes`` (default
``/spotfire/api/``) and, when ``config.faults_on_token_endpoint`` is set, to the token endpoint. One draw of
a seeded RNG (``config.fault_seed``) per eligible request decides the fault, so a test that makes the same
requests sees the same faults. Scripted faults (``POST /_emulator/faults``) are consumed first, in order.

Dropped connections are real: half of them before the request is processed, half after it was processed
with the response lost. The TCP connection is aborted without any response bytes, so clients see a
connection error (e.g. ``httpx.RemoteProtocolError`` / ``requests.ConnectionError``), never an HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_spotfire.emulator.config import EmulatorConfig
from airflow_provider_spotfire.emulator.oauth import INFO_KEY
from airflow_provider_spotfire.emulator.state import EmulatorState

RAW_SEND_KEY = "spotfire_emulator.raw_send"
TOKEN_PATH = "/spotfire/oauth2/token"
FAULT_KINDS = ("503", "429", "drop_before", "drop_after")


class DroppedConnection(ConnectionError):
    """Raised when a connection must be dropped but the server gives no access to its transport."""


def fault_applies(cfg: EmulatorConfig, path: str) -> bool:
    """Whether random faults may hit ``path``."""
    if path.startswith("/_emulator"):
        return False
    if cfg.faults_on_token_endpoint and path == TOKEN_PATH:
        return True
    return any(path.startswith(p) for p in cfg.fault_path_prefixes)


def decide_fault(state: EmulatorState, path: str, method: str) -> str | None:
    """Pick the fault for one request: scripted faults first, then one seeded RNG draw."""
    if path.startswith("/_emulator"):
        return None
    with state.lock:
        for i, entry in enumerate(state.fault_script):
            if path.startswith(entry.get("path_prefix") or "/") and entry.get("method") in (None, method):
                del state.fault_script[i]
                return entry["fault"]
        cfg = state.config
        if not fault_applies(cfg, path):
            return None
        drop_rate = cfg.drop_rate
        if cfg.drop_path_prefixes is not None and not any(path.startswith(p) for p in cfg.drop_path_prefixes):
            drop_rate = 0.0
        total = drop_rate + cfg.rate_503 + cfg.rate_429
        if total <= 0:
            return None
        r = state.fault_rng.random()
        if r < drop_rate:
            return "drop_before" if state.fault_rng.random() < 0.5 else "drop_after"
        if r < drop_rate + cfg.rate_503:
            return "503"
        if r < total:
            return "429"
        return None


async def _error(send: Send, status: int, code: str, description: str, retry_after: int) -> None:
    body = json.dumps({"error": {"code": code, "description": description}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def drop_connection(scope: Scope, send: Send) -> None:
    """Abort the TCP connection without sending anything (uvicorn), or fail loudly elsewhere."""
    raw_send = scope.get(RAW_SEND_KEY)
    cycle = getattr(raw_send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        with contextlib.suppress(AttributeError):
            cycle.disconnected = True  # type: ignore[union-attr]
        transport.abort()
        await asyncio.sleep(0)
        return
    # Unknown server: start a response promising more bytes than will ever come, then fail.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1048576")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise DroppedConnection("connection dropped by the Spotfire emulator fault injection")


class FaultInjectionMiddleware:
    """Pure ASGI middleware injecting latency, 503/429 answers and dropped connections."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: EmulatorState = scope["app"].state.emulator
        path: str = scope["path"]
        cfg = state.config
        fault = decide_fault(state, path, scope["method"])
        info: dict[str, Any] = scope.setdefault(INFO_KEY, {})
        if cfg.latency_ms and fault_applies(cfg, path):
            state.count("faults_injected", "latency")
            await asyncio.sleep(cfg.latency_ms / 1000)
        if fault is None:
            await self.app(scope, receive, send)
            return
        info["fault"] = fault
        state.count("faults_injected", fault)
        if fault == "503":
            await _error(
                send,
                503,
                "server_busy",
                "The server is currently too busy to handle the request",
                cfg.retry_after,
            )
        elif fault == "429":
            await _error(
                send, 429, "rate_limit_exceeded", "A resource limit has been reached", cfg.retry_after
            )
        elif fault == "drop_before":
            await drop_connection(scope, send)
        else:
            lost: dict[str, Any] = {}

            async def swallow(message: Message) -> None:
                if message["type"] == "http.response.start":
                    lost["status"] = message["status"]

            await self.app(scope, receive, swallow)
            info["lost_status"] = lost.get("status")
            await drop_connection(scope, send)
