"""Core of the emulator state that every API store uses: ids and timestamps, the clock, the counters and
the principals (API clients, users, groups).

All stores share one ``threading.RLock`` (owned by :class:`~.state.EmulatorState`); every method here
takes it, so they can be called with or without the lock held.
"""

from __future__ import annotations

import collections
import itertools
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_spotfire.emulator.constants import (
    ALL_SCOPES,
    AUTH_METHODS,
    GROUP_ADMINISTRATOR,
    GROUP_EVERYONE,
    PROFILES,
    PUBLIC_PROFILES,
)


def iso(ts: float | None) -> str | None:
    """ISO-8601 UTC timestamp with millisecond precision and a ``Z`` suffix (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A fresh lower-case GUID."""
    return str(uuid.uuid4())


POLL_TIMES_KEPT = 100


@dataclass
class PollLog:
    """The status requests of one job: how many, and when the last ``POLL_TIMES_KEPT`` came."""

    count: int = 0
    times: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=POLL_TIMES_KEPT))

    def record(self, now: float) -> None:
        """Count one status request at ``now``."""
        self.count += 1
        self.times.append(now)

    def times_iso(self) -> list[str | None]:
        """The kept poll times, oldest first, as ISO timestamps."""
        return [iso(t) for t in self.times]


class Clock:
    """Emulator wall clock: real (or frozen) time plus an offset that only moves forward."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.offset = 0.0
        self.frozen_at: float | None = None

    def now(self) -> float:
        """Current emulator time (epoch seconds)."""
        base = self.frozen_at if self.frozen_at is not None else time.time()
        return base + self.offset

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or restart) the clock; only :meth:`advance` moves a frozen clock."""
        with self._lock:
            if frozen and self.frozen_at is None:
                self.frozen_at = time.time()
            elif not frozen and self.frozen_at is not None:
                self.offset += self.frozen_at - time.time()
                self.frozen_at = None

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new offset."""
        with self._lock:
            self.offset += seconds
            return self.offset


def initial_counters() -> dict[str, Any]:
    """The counters of a freshly reset emulator (``counters`` in ``GET /_emulator/state``)."""
    return {
        "token_requests": {},
        "tokens_issued": {},
        "faults_injected": {"503": 0, "429": 0, "drop_before": 0, "drop_after": 0, "latency": 0},
        "as_starts": 0,
        "as_starts_by_client": {},
        "as_starts_by_source": {},
        "api_requests": 0,
        "uploads_finished": 0,
        "uploads_failed": 0,
        "refresh_requests": 0,
        "reuse_detected": 0,
        "grants_revoked": 0,
    }


class Activity:
    """Counters and the bounded request log."""

    def __init__(self, lock: threading.RLock, log_size: int) -> None:
        self._lock = lock
        self.counters: dict[str, Any] = initial_counters()
        self.request_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=log_size)
        self._seq = itertools.count(1)

    def count(self, name: str, key: str | None = None, n: int = 1) -> None:
        """Increment a counter (or a keyed sub-counter)."""
        with self._lock:
            if key is None:
                self.counters[name] = self.counters.get(name, 0) + n
            else:
                sub = self.counters.setdefault(name, {})
                sub[key] = sub.get(key, 0) + n

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append one entry (numbered ``seq``) to the request log."""
        with self._lock:
            entry["seq"] = next(self._seq)
            self.request_log.append(entry)

    def resize_log(self, size: int) -> None:
        """Keep at most ``size`` entries from now on."""
        with self._lock:
            if size != self.request_log.maxlen:
                self.request_log = collections.deque(self.request_log, maxlen=size)


@dataclass
class ApiClient:
    """A registered API client (like ``register-api-client``); it is also a Spotfire user."""

    client_id: str
    client_secret: str | None
    profile: str
    grant_types: list[str]
    scopes: list[str]
    token_endpoint_auth_methods: list[str]
    redirect_uris: list[str]
    user_id: str
    display_name: str
    seeded: bool = False

    @property
    def is_public(self) -> bool:
        """Public clients have no secret and must use PKCE."""
        return self.client_secret is None

    def to_dict(self, include_secret: bool = False) -> dict[str, Any]:
        """JSON view (the secret only on request)."""
        d = {
            "client_id": self.client_id,
            "profile": self.profile,
            "grant_types": self.grant_types,
            "scopes": self.scopes,
            "token_endpoint_auth_methods": self.token_endpoint_auth_methods,
            "redirect_uris": self.redirect_uris,
            "user_id": self.user_id,
            "display_name": self.display_name,
            "public": self.is_public,
        }
        if include_secret:
            d["client_secret"] = self.client_secret
        return d


@dataclass
class User:
    """A Spotfire user (API clients appear as users too, with ``client_id`` set)."""

    user_id: str
    name: str
    display_name: str
    groups: list[str]
    client_id: str | None = None


@dataclass
class Group:
    """A Spotfire group; ``member_of`` lists the groups this group is a direct member of."""

    group_id: str
    name: str
    member_of: list[str]


def client_rules(
    profile: str,
    grant_types: list[str] | None,
    scopes: list[str] | None,
    client_secret: str | None,
    methods: list[str] | None,
    redirect_uris: list[str] | None,
) -> tuple[list[str], list[str], str | None, list[str], list[str]]:
    """Apply the ``register-api-client`` profile rules: (grants, scopes, secret, auth methods, redirects)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
    allowed = {"client_credentials"} if profile == "other" else {"authorization_code", "refresh_token"}
    if grant_types is None:
        grant_types = (
            ["client_credentials"] if profile == "other" else ["authorization_code", "refresh_token"]
        )
    bad = [g for g in grant_types if g not in allowed]
    if bad or not grant_types:
        raise ValueError(
            f"profile {profile!r} can only use the grant types {sorted(allowed)} (got {grant_types})"
        )
    scopes = list(scopes if scopes is not None else ALL_SCOPES[:-1])
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes: {unknown}")
    if profile in PUBLIC_PROFILES:
        if client_secret is not None:
            raise ValueError(f"no client credentials are issued to {profile} clients")
        methods = ["none"]
    else:
        if client_secret is None:
            client_secret = secrets.token_urlsafe(24)
        methods = list(methods or ["client_secret_basic"])
        if any(m not in AUTH_METHODS[:2] for m in methods):
            raise ValueError(
                "token_endpoint_auth_methods must be client_secret_basic and/or client_secret_post"
            )
    redirect_uris = list(redirect_uris or [])
    if profile == "web" and not redirect_uris:
        raise ValueError("web clients need at least one registered redirect URI")
    return list(grant_types), scopes, client_secret, methods, redirect_uris


class Principals:
    """API clients, users and groups, and the group membership rules."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.clients: dict[str, ApiClient] = {}
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}

    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        profile: str = "other",
        scopes: list[str] | None = None,
        grant_types: list[str] | None = None,
        token_endpoint_auth_methods: list[str] | None = None,
        redirect_uris: list[str] | None = None,
        groups: list[str] | None = None,
        user_id: str | None = None,
        display_name: str | None = None,
        seeded: bool = False,
    ) -> ApiClient:
        """Register (or replace) an API client, enforcing the profile rules of the spec (``ValueError``)."""
        if not client_id or not isinstance(client_id, str):
            raise ValueError("client_id is required")
        grants, scopes, secret, methods, redirects = client_rules(
            profile, grant_types, scopes, client_secret, token_endpoint_auth_methods, redirect_uris
        )
        groups = list(groups or [])
        with self._lock:
            for g in groups:
                if g not in self.groups:
                    raise ValueError(f"unknown group id {g}")
            old = self.clients.get(client_id)
            if old is not None:
                self.users.pop(old.user_id, None)
            uid = user_id or new_id()
            client = ApiClient(
                client_id=client_id,
                client_secret=secret,
                profile=profile,
                grant_types=grants,
                scopes=scopes,
                token_endpoint_auth_methods=methods,
                redirect_uris=redirects,
                user_id=uid,
                display_name=display_name or client_id,
                seeded=seeded,
            )
            self.clients[client_id] = client
            self.users[uid] = User(uid, client_id, client.display_name, groups, client_id=client_id)
            return client

    def remove_client(self, client_id: str) -> ApiClient | None:
        """Forget an API client and its user (tokens are the caller's business)."""
        with self._lock:
            client = self.clients.pop(client_id, None)
            if client is not None:
                self.users.pop(client.user_id, None)
            return client

    def find_user(self, user_id: str) -> User | None:
        """User by id (case-insensitive GUID match)."""
        with self._lock:
            return self.users.get(user_id) or self.users.get(user_id.lower())

    def find_user_by_name(self, name: str) -> User | None:
        """User by user name."""
        with self._lock:
            return next((u for u in self.users.values() if u.name == name), None)

    def find_group(self, group_id: str) -> Group | None:
        """Group by id (case-insensitive GUID match)."""
        with self._lock:
            return self.groups.get(group_id) or self.groups.get(group_id.lower())

    def resolve_principal(self, ref: str) -> str | None:
        """A user/group id from an id, a group name, a user name or a client id."""
        with self._lock:
            if ref in self.groups or ref in self.users:
                return ref
            for g in self.groups.values():
                if g.name == ref:
                    return g.group_id
            if ref in self.clients:
                return self.clients[ref].user_id
            u = self.find_user_by_name(ref)
            if u:
                return u.user_id
            return GROUP_EVERYONE if ref.lower() == "everyone" else None

    def group_ancestors(self, group_id: str) -> list[str]:
        """Groups that ``group_id`` is (transitively) a member of, nearest first, without itself."""
        with self._lock:
            seen: list[str] = []
            queue = list(self.groups[group_id].member_of) if group_id in self.groups else []
            while queue:
                g = queue.pop(0)
                if g in seen or g == group_id or g not in self.groups:
                    continue
                seen.append(g)
                queue.extend(self.groups[g].member_of)
            return seen

    def user_groups(self, user_id: str) -> list[str]:
        """All groups of a user: direct, transitive and the implicit Everyone group."""
        with self._lock:
            user = self.users.get(user_id)
            result: list[str] = []
            for g in user.groups if user else []:
                for x in [g, *self.group_ancestors(g)]:
                    if x not in result:
                        result.append(x)
            if GROUP_EVERYONE not in result:
                result.append(GROUP_EVERYONE)
            return result

    def principal_ids(self, user_id: str) -> set[str]:
        """The user id plus all its group ids (for permission checks)."""
        return {user_id, *self.user_groups(user_id)}

    def is_admin(self, user_id: str) -> bool:
        """Member (directly or transitively) of the Administrator group."""
        return GROUP_ADMINISTRATOR in self.user_groups(user_id)

    def snapshot(self) -> dict[str, Any]:
        """Clients, users and groups for ``GET /_emulator/state``."""
        with self._lock:
            return {
                "clients": [c.to_dict() for c in self.clients.values()],
                "users": [
                    {
                        "id": u.user_id,
                        "name": u.name,
                        "displayName": u.display_name,
                        "groups": u.groups,
                        "clientId": u.client_id,
                    }
                    for u in self.users.values()
                ],
                "groups": [
                    {"id": g.group_id, "name": g.name, "memberOf": g.member_of} for g in self.groups.values()
                ],
            }
