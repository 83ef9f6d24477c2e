"""Deterministic fakes for the token flows: a virtual clock, a store and an authorization server.

:class:`Simulation` runs the flows of many simulated processes interleaved in virtual time, the
way the sync and async drivers run one: each yielded effect takes some virtual time (store and
network latency), ``Sleep`` advances only the sleeping process. Nothing sleeps for real.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import HttpRequest, HttpResponse, raise_for_response
from airflow_provider_spotfire.oauth import Lease, LeaseTimings, StoredGrant, TokenManager
from airflow_provider_spotfire.oauth.effects import (
    LoadGrant,
    LoadLease,
    MaskSecret,
    SaveGrant,
    SaveLease,
    Send,
    Sleep,
)

CONFIG = SpotfireConnectionConfig(
    conn_id="sf_user",
    base_url="https://spotfire.test",
    context_path="/spotfire",
    client_id="web-client",
    client_secret="web-secret",
    grant_type="refresh_token",
    refresh_token="rt-0",
    timeout=10.0,
)


FAST_TIMINGS = LeaseTimings(settle=0.5, poll=0.2, recovery_wait=3.0)


class FakeClock:
    """Monotonic and wall time that move only when told (wall = monotonic + offset)."""

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1.7e9) -> None:
        self.now = start
        self.wall_offset = wall_offset
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now + self.wall_offset

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class SkewedClock(FakeClock):
    """A host whose wall clock is ``skew`` seconds off, reading a shared virtual time."""

    def __init__(self, base: FakeClock, skew: float) -> None:
        super().__init__()
        self.base = base
        self.skew = skew

    def monotonic(self) -> float:
        return self.base.now

    def time(self) -> float:
        return self.base.time() + self.skew


class MemoryStore:
    """A RefreshTokenStore in memory: last write wins, every write counted."""

    def __init__(self) -> None:
        self.value: StoredGrant | None = None
        self.lease: Lease | None = None
        self.writes: list[StoredGrant] = []
        self.lease_writes: list[Lease | None] = []
        self.reads = 0
        self.fail_reads = False

    def load(self, config: SpotfireConnectionConfig) -> StoredGrant | None:
        self.reads += 1
        if self.fail_reads:
            raise ConnectionError("store unreachable")
        return self.value

    def save(self, config: SpotfireConnectionConfig, grant: StoredGrant) -> None:
        self.writes.append(grant)
        self.value = grant

    def load_lease(self, config: SpotfireConnectionConfig) -> Lease | None:
        if self.fail_reads:
            raise ConnectionError("store unreachable")
        return self.lease

    def save_lease(self, config: SpotfireConnectionConfig, lease: Lease | None) -> None:
        self.lease_writes.append(lease)
        self.lease = lease

    def clear(self, config: SpotfireConnectionConfig) -> None:
        self.value = self.lease = None


@dataclass
class FakeAuthorizationServer:
    """Refresh-token grant of one user: rotation, reuse detection (RFC 9700 4.14.2), no metadata."""

    clock: FakeClock
    lifetime: float = 30.0
    rotate: bool = True
    echo_refresh_token: bool = True  # non-rotating servers: answer with the same token, or none
    reuse_detection: bool = True
    current: str = "rt-0"
    used: set[str] = field(default_factory=set)
    revoked: bool = False
    refreshes: int = 0
    reuse_detected: int = 0
    refused: int = 0
    sent_tokens: list[str] = field(default_factory=list)
    _serial: itertools.count = field(default_factory=lambda: itertools.count(1))

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET":
            return self._json(404, {"error": "not_found"})
        form = {k: v[0] for k, v in parse_qs(request.form or "").items()}
        assert form["grant_type"] == "refresh_token"
        token = form["refresh_token"]
        self.sent_tokens.append(token)
        if token in self.used and self.reuse_detection:
            self.reuse_detected += 1
            self.revoked = True
        if self.revoked or token != self.current:
            self.refused += 1
            return self._json(
                400, {"error": "invalid_grant", "error_description": "The refresh token is invalid"}
            )
        self.refreshes += 1
        body: dict[str, Any] = {
            "access_token": f"at-{next(self._serial)}",
            "token_type": "Bearer",
            "expires_in": self.lifetime,
        }
        if self.rotate:
            self.used.add(token)
            self.current = f"rt-{self.refreshes}"
            body["refresh_token"] = self.current
        elif self.echo_refresh_token:
            body["refresh_token"] = token
        return self._json(200, body)

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> HttpResponse:
        return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


@dataclass(order=True)
class _Wake:
    at: float
    seq: int
    proc: int = field(compare=False)


@dataclass
class Process:
    """One simulated task process: its manager and what happened to it."""

    manager: TokenManager
    tokens: list[str] = field(default_factory=list)
    error: BaseException | None = None


class Simulation:
    """Interleave the token flows of several processes in virtual time."""

    def __init__(
        self,
        server: FakeAuthorizationServer,
        store: MemoryStore,
        clock: FakeClock,
        *,
        timings: LeaseTimings = FAST_TIMINGS,
        latency: Callable[[str, int], float] | None = None,
        seed: int = 0,
    ) -> None:
        self.server = server
        self.store = store
        self.clock = clock
        self.timings = timings
        self.rng = random.Random(seed)
        self.latency = latency or (lambda kind, index: self.rng.uniform(0.001, 0.05))

    def manager(self, config: SpotfireConnectionConfig = CONFIG, clock: Any = None) -> TokenManager:
        return TokenManager(config, self.store, clock=clock or self.clock, timings=self.timings)

    def perform(self, effect: Any) -> Any:
        if isinstance(effect, Send):
            response = self.server.handle(effect.request)
            raise_for_response(effect.request.method, effect.request.path, response)
            return response
        if isinstance(effect, LoadGrant):
            return self.store.load(CONFIG)
        if isinstance(effect, SaveGrant):
            return self.store.save(CONFIG, effect.grant)
        if isinstance(effect, LoadLease):
            return self.store.load_lease(CONFIG)
        if isinstance(effect, SaveLease):
            return self.store.save_lease(CONFIG, effect.lease)
        assert isinstance(effect, MaskSecret)
        return None

    def run(self, procs: list[Process], *, until: float, every: float) -> None:
        """Each process asks for a token every ``every`` s (jittered) until virtual time ``until``."""
        seq = itertools.count()
        queue = [_Wake(self.clock.now + self.rng.uniform(0, every), next(seq), i) for i in range(len(procs))]
        heapq.heapify(queue)
        flows: dict[int, tuple[Generator[Any, Any, Any], Any, BaseException | None]] = {}
        while queue:
            wake = heapq.heappop(queue)
            self.clock.now = max(self.clock.now, wake.at)
            proc = procs[wake.proc]
            if wake.proc not in flows:
                if self.clock.now >= until or proc.error is not None:
                    continue
                token = proc.manager.cached(proc.manager.scope_key(()))
                if token is not None:
                    proc.tokens.append(token.access_token)
                    heapq.heappush(queue, _Wake(self.clock.now + every, next(seq), wake.proc))
                    continue
                flows[wake.proc] = (proc.manager.token_flow(proc.manager.scope_key(())), None, None)
            delay = self._step(proc, flows, wake.proc, every)
            if delay is not None:
                heapq.heappush(queue, _Wake(self.clock.now + delay, next(seq), wake.proc))

    def _step(self, proc: Process, flows: dict[int, Any], index: int, every: float) -> float | None:
        flow, result, error = flows[index]
        try:
            effect = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as stop:
            del flows[index]
            proc.tokens.append(stop.value.access_token)
            return every
        except Exception as exc:
            del flows[index]
            proc.error = exc
            return None
        if isinstance(effect, Sleep):
            flows[index] = (flow, None, None)
            return effect.seconds
        kind = type(effect).__name__
        try:
            flows[index] = (flow, self.perform(effect), None)
        except Exception as exc:
            flows[index] = (flow, None, exc)
        return self.latency(kind, index)
