"""One refresh for the whole deployment: the shared-grant flow with a settled lease.

Every process reads the :class:`StoredGrant`. A usable access token in it is simply used. When
it is due for renewal, a process writes a lease (its owner id, an expiry) to the lease record,
waits ``settle`` seconds and reads it again: whoever's lease survived (last write wins) reads the
grant once more (a previous leader may just have written it) and refreshes; everyone else waits
for the token the winner writes. Leases live apart from the grant, so a late lease write never
overwrites newer tokens. On ``invalid_grant`` the loser of a race it could not
see re-reads the store and waits (bounded) for the winner's token before calling the grant dead;
a dead grant is marked in the store so that no process sends the refused token again.
The store needs no locks and no compare-and-set: only read-your-writes and last-write-wins.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import REFUSED_STATUSES
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireAuthenticationError,
    SpotfireTimeoutError,
    SpotfireTLSError,
    SpotfireTransportError,
)
from airflow_provider_spotfire.oauth.clock import Clock
from airflow_provider_spotfire.oauth.effects import (
    Effect,
    Flow,
    LoadGrant,
    LoadLease,
    MaskSecret,
    SaveGrant,
    SaveLease,
    Sleep,
)
from airflow_provider_spotfire.oauth.fetch import TokenEndpoint
from airflow_provider_spotfire.oauth.grants.refresh_token import ALL_GRANTED
from airflow_provider_spotfire.oauth.store import Lease, StoredGrant, fingerprint
from airflow_provider_spotfire.oauth.token import TokenResponse, renewal_margin

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTimings:
    """How long the shared-grant flow waits for what (seconds)."""

    settle: float = 1.0  # after writing a lease, before reading who won; > one store round trip
    poll: float = 0.25  # between reads while another process refreshes
    lease_ttl: float | None = None  # default: 2 x request timeout + settle
    recovery_wait: float = 10.0  # after invalid_grant, how long to wait for a concurrent refresher
    refusal_retries: int = 3  # 429/503 answers to a refresh (the server did not act)

    def ttl(self, config: SpotfireConnectionConfig) -> float:
        return self.lease_ttl if self.lease_ttl is not None else 2 * config.timeout + self.settle


def _new_owner() -> str:
    """A lease owner id unique to this flow run: host, pid (read now: task processes are forked) and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class SharedGrantFlow:
    """Refresh-token state of one connection in one process, coordinated through the store."""

    def __init__(
        self,
        config: SpotfireConnectionConfig,
        endpoint: TokenEndpoint,
        clock: Clock,
        timings: LeaseTimings,
        *,
        coordinated: bool,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.clock = clock
        self.timings = timings
        self.coordinated = coordinated
        self.refresh_token = config.refresh_token  # the newest one this process knows
        self.rejected: set[str] = set()  # fingerprints of access tokens an API answered 401 to
        self._masked: set[str] = set()
        self._store_warned = False

    # ---- reading the store -----------------------------------------------------------------

    def usable(self, record: StoredGrant | None) -> StoredGrant | None:
        """``record`` if its access token is outside the renewal margin and not rejected."""
        if record is None or not record.access_token or record.expires_at is None:
            return None
        if fingerprint(record.access_token) in self.rejected:
            return None
        remaining = record.expires_at - self.clock.time()
        lifetime = record.lifetime or remaining
        return record if remaining > renewal_margin(lifetime) else None

    def _load(self) -> Flow[StoredGrant | None]:
        """The stored grant (the process's own refresh token if the store is empty); None if unreadable."""
        readable, record = yield from self._try_store(LoadGrant(), "read")
        if not readable:
            return None
        if record is None or not record.refresh_token:
            record = replace(record or StoredGrant(), refresh_token=self.refresh_token)
        for secret in (record.refresh_token, record.access_token):
            if secret and secret not in self._masked:
                self._masked.add(secret)
                yield MaskSecret(secret)
        if record.refresh_token and record.dead != fingerprint(record.refresh_token):
            self.refresh_token = record.refresh_token
        return record

    def _try_store(self, effect: Effect, action: str) -> Flow[tuple[bool, Any]]:
        """Run a store effect: ``(True, its result)``, or ``(False, None)`` after warning (once) of the failure."""
        try:
            return True, (yield effect)
        except Exception as exc:
            self._warn_store(action, exc)
            return False, None

    def _warn_store(self, action: str, exc: BaseException) -> None:
        if not self._store_warned:
            self._store_warned = True
            log.warning(
                "Could not %s the shared Spotfire tokens of connection %r (%s); this process refreshes "
                "on its own. Other processes using the connection may then hold a rotated-away refresh "
                "token. Make sure tasks and triggerers can read and write Variables.",
                action,
                self.config.conn_id,
                type(exc).__name__,
            )

    # ---- the flow --------------------------------------------------------------------------

    def flow(self, depth: int = 0) -> Flow[StoredGrant]:
        """A stored grant whose access token is usable: shared, or refreshed by this process."""
        owner = _new_owner()
        ttl = self.timings.ttl(self.config)
        give_up = self.clock.monotonic() + 3 * ttl
        while True:
            record = (yield from self._load()) if self.coordinated else None
            if record is None:
                return (yield from self._refresh(StoredGrant(refresh_token=self.refresh_token), owner, False))
            if (ready := self.usable(record)) is not None:
                return ready
            self._raise_if_dead(record)
            held = yield from self._load_lease()
            if held is not None and held.owner != owner and held.until > self.clock.time():
                if self.clock.monotonic() > give_up:
                    raise SpotfireTimeoutError(
                        f"Another process has been refreshing the Spotfire token of connection "
                        f"{self.config.conn_id!r} for over {3 * ttl:g} s ({held.owner}). Check that "
                        "process; its lease expires by itself."
                    )
                yield Sleep(self.timings.poll)
                continue
            won = yield from self._take_lease(Lease(owner, self.clock.time() + ttl))
            if won is False:
                continue
            record = (yield from self._load()) if won else record  # what the previous leader wrote
            if record is None:
                return (yield from self._refresh(StoredGrant(refresh_token=self.refresh_token), owner, False))
            if (ready := self.usable(record)) is not None:
                yield from self._release(owner, True)
                return ready
            self._raise_if_dead(record)
            return (yield from self._refresh(record, owner, won is True, depth))

    def _load_lease(self) -> Flow[Lease | None]:
        _, lease = yield from self._try_store(LoadLease(), "read")
        return lease  # type: ignore[no-any-return]

    def _take_lease(self, lease: Lease) -> Flow[bool | None]:
        """Write the lease, let concurrent writers land, read back who holds it.

        True: this process holds it; False: another one does; None: the store cannot be written.
        """
        written, _ = yield from self._try_store(SaveLease(lease), "write")
        if not written:
            return None
        yield Sleep(self.timings.settle)
        held = yield from self._load_lease()
        return held is not None and held.owner == lease.owner

    def _raise_if_dead(self, record: StoredGrant) -> None:
        if record.dead is not None and record.dead == fingerprint(record.refresh_token):
            raise self._dead_error(None)

    # ---- refreshing ------------------------------------------------------------------------

    def _refresh(
        self, record: StoredGrant, owner: str, coordinated: bool, depth: int = 0
    ) -> Flow[StoredGrant]:
        sent = record.refresh_token or self.refresh_token or ""
        try:
            result = yield from self._send(sent, owner, coordinated)
        except SpotfireAuthenticationError as exc:
            if exc.code != "invalid_grant":
                yield from self._release(owner, coordinated)
                raise
            return (yield from self._recover(sent, owner, exc, coordinated, depth))
        except Exception:
            yield from self._release(owner, coordinated)
            raise
        new_refresh = result.refresh_token or sent  # servers that do not rotate answer without one
        self.refresh_token = new_refresh
        fresh = StoredGrant(
            refresh_token=new_refresh,
            access_token=result.access_token,
            expires_at=self.clock.time() + result.expires_in,
            lifetime=result.expires_in,
            scopes=tuple(sorted(result.scopes or ())),
        )
        if coordinated or new_refresh != sent:
            yield from self._publish(fresh, rotated=new_refresh != sent)
        yield from self._release(owner, coordinated)
        return fresh

    def _send(self, sent: str, owner: str, coordinated: bool) -> Flow[TokenResponse]:
        """The refresh request, sent once per attempt; retried only when the server did not act."""
        for attempt in range(1, self.timings.refusal_retries + 2):
            try:
                return (yield from self.endpoint.request_flow(ALL_GRANTED, once=True, refresh_token=sent))
            except (SpotfireApiError, SpotfireTransportError) as exc:
                if attempt > self.timings.refusal_retries or not _not_acted_on(exc):
                    raise
                wait = min(
                    getattr(exc, "retry_after", None) or float(attempt), self.timings.ttl(self.config) / 4
                )
                if coordinated:  # keep the lease while waiting out the refusal
                    yield from self._save_lease(
                        Lease(owner, self.clock.time() + self.timings.ttl(self.config))
                    )
                yield Sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _recover(
        self, sent: str, owner: str, exc: SpotfireAuthenticationError, coordinated: bool, depth: int
    ) -> Flow[StoredGrant]:
        """After invalid_grant: adopt what a concurrent refresher wrote, or declare the grant dead."""
        if not coordinated or depth >= 3:
            raise self._dead_error(exc)
        deadline = self.clock.monotonic() + self.timings.recovery_wait
        record = None
        while True:
            record = yield from self._load()
            if record is None:
                raise self._dead_error(exc)
            if (ready := self.usable(record)) is not None:
                yield from self._release(owner, True)
                return ready
            if record.refresh_token != sent and record.dead != fingerprint(record.refresh_token):
                log.info("Another process rotated the Spotfire refresh token; using its token.")
                yield from self._release(owner, True)
                return (yield from self.flow(depth + 1))
            if self.clock.monotonic() >= deadline:
                break
            yield Sleep(self.timings.poll)
        yield from self._publish(replace(record, dead=fingerprint(sent)), rotated=False)
        yield from self._release(None, True)
        raise self._dead_error(exc)

    def _release(self, owner: str | None, coordinated: bool) -> Flow[None]:
        """Drop our lease (``owner`` None: whoever's) so that others need not wait for it to expire."""
        if not coordinated:
            return
        held = yield from self._load_lease()
        if held is not None and (owner is None or held.owner == owner):
            yield from self._save_lease(None)

    def _save_lease(self, lease: Lease | None) -> Flow[None]:
        yield from self._try_store(SaveLease(lease), "write")

    def _publish(self, record: StoredGrant, *, rotated: bool) -> Flow[None]:
        try:
            yield SaveGrant(record)
        except Exception as exc:
            if not rotated:
                self._warn_store("write", exc)
                return
            log.error(
                "Spotfire issued a new refresh token for connection %r but it could not be stored "
                "(%s). It is kept in memory for this process; other processes and later runs will fail "
                "with invalid_grant until `airflow-spotfire login --conn-id %s` is run again.",
                self.config.conn_id,
                type(exc).__name__,
                self.config.conn_id,
            )

    def _dead_error(self, exc: SpotfireApiError | None) -> SpotfireAuthenticationError:
        said = f" ({exc.description.rstrip('.')})" if exc is not None and exc.description else ""
        return SpotfireAuthenticationError(
            f"Spotfire refused the refresh token of connection {self.config.conn_id!r} with "
            f"invalid_grant{said}: the sign-in was revoked or has expired. Sign in again with "
            f"`airflow-spotfire login --conn-id {self.config.conn_id}`.",
            status_code=exc.status_code if exc is not None else 400,
            code="invalid_grant",
            description=exc.description if exc is not None else None,
            method="POST",
            path=self.endpoint.path,
        )


def _not_acted_on(exc: BaseException) -> bool:
    """True if the server certainly did not use the refresh token (so sending it again is safe)."""
    if isinstance(exc, SpotfireApiError):
        return exc.status_code in REFUSED_STATUSES
    if isinstance(exc, SpotfireTLSError):
        return False
    return isinstance(exc, SpotfireTransportError) and not getattr(exc, "request_sent", True)


__all__ = ["LeaseTimings", "SharedGrantFlow"]
