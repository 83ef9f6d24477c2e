"""Where the refresh-token grant of a connection is shared by every process that uses it.

The store holds two records per connection: the :class:`StoredGrant` (current refresh token,
current access token with its wall-clock expiry, a "dead" marker) and, apart from it, the
refresh :class:`Lease`, so that a lease written late can never overwrite newer tokens. The
default :class:`VariableRefreshTokenStore` keeps them in two Airflow Variables; any object with
the same five methods (e.g. backed by a secrets manager) can replace it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from airflow_provider_spotfire._connection import SpotfireConnectionConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 2


def fingerprint(value: str | None) -> str:
    """A short, non-reversible name for a secret (truncated SHA-256)."""
    return hashlib.sha256((value or "").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Lease:
    """ "Process ``owner`` is refreshing until wall-clock time ``until``"."""

    owner: str
    until: float


@dataclass(frozen=True)
class StoredGrant:
    """What every process of a deployment shares about one refresh-token grant (secrets not in repr)."""

    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # wall clock (time.time()) -- comparable across hosts
    lifetime: float | None = None
    scopes: tuple[str, ...] = ()
    dead: str | None = None  # fingerprint of a refresh token the server refused for good

    def to_json(self, origin: str) -> str:
        data: dict[str, Any] = {"v": FORMAT_VERSION, "origin": origin, **asdict(self)}
        return json.dumps({k: v for k, v in data.items() if v not in (None, ())}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> tuple[StoredGrant, str | None] | None:
        """(grant, origin) from the JSON of :meth:`to_json` (or of version 1); ``None`` if unreadable."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        try:
            return (
                cls(
                    refresh_token=_str(data.get("refresh_token")),
                    access_token=_str(data.get("access_token")),
                    expires_at=_float(data.get("expires_at")),
                    lifetime=_float(data.get("lifetime")),
                    scopes=tuple(str(s) for s in data.get("scopes") or ()),
                    dead=_str(data.get("dead")),
                ),
                _str(data.get("origin")),
            )
        except (TypeError, ValueError):
            return None


def lease_to_json(lease: Lease) -> str:
    return json.dumps({"owner": lease.owner, "until": lease.until})


def lease_from_json(text: str | None) -> Lease | None:
    try:
        data = json.loads(text or "null")
        return Lease(str(data["owner"]), float(data["until"])) if isinstance(data, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


class RefreshTokenStore(Protocol):
    """Shared storage of one connection's grant and lease; each read and written whole, last write wins."""

    def load(self, config: SpotfireConnectionConfig) -> StoredGrant | None: ...

    def save(self, config: SpotfireConnectionConfig, grant: StoredGrant) -> None: ...

    def load_lease(self, config: SpotfireConnectionConfig) -> Lease | None: ...

    def save_lease(self, config: SpotfireConnectionConfig, lease: Lease | None) -> None: ...

    def clear(self, config: SpotfireConnectionConfig) -> None: ...


def as_stored_grant(loaded: object) -> StoredGrant | None:
    """Accept what older custom stores return from ``load`` (a bare refresh token string)."""
    if loaded is None or isinstance(loaded, StoredGrant):
        return loaded
    if isinstance(loaded, str):
        return StoredGrant(refresh_token=loaded) if loaded else None
    raise TypeError(f"RefreshTokenStore.load returned {type(loaded).__name__}, not StoredGrant or None")


class VariableRefreshTokenStore:
    """Keeps the shared grant in the Airflow Variable ``spotfire_refresh_token__<conn_id>``.

    The lease lives in ``spotfire_refresh_lease__<conn_id>`` (no secret in it).

    The JSON records ``origin``, a fingerprint of the connection's refresh token when it was
    written: after a new ``airflow-spotfire login`` the stale Variable is ignored. The key
    contains "token", so Airflow masks the value in logs and the UI. Inside tasks and triggers
    it goes through the Task SDK (the api-server), elsewhere through the metadata DB.
    """

    @staticmethod
    def key(config: SpotfireConnectionConfig) -> str:
        return f"spotfire_refresh_token__{config.conn_id}"

    def load(self, config: SpotfireConnectionConfig) -> StoredGrant | None:
        raw = _variable_get(self.key(config))
        parsed = StoredGrant.from_json(raw) if raw else None
        if parsed is None:
            return None
        grant, origin = parsed
        if origin != fingerprint(config.refresh_token):
            return None  # the connection got a new refresh token since: it wins
        return grant

    def save(self, config: SpotfireConnectionConfig, grant: StoredGrant) -> None:
        _variable_set(self.key(config), grant.to_json(fingerprint(config.refresh_token)))

    @staticmethod
    def lease_key(config: SpotfireConnectionConfig) -> str:
        return f"spotfire_refresh_lease__{config.conn_id}"

    def load_lease(self, config: SpotfireConnectionConfig) -> Lease | None:
        return lease_from_json(_variable_get(self.lease_key(config)))

    def save_lease(self, config: SpotfireConnectionConfig, lease: Lease | None) -> None:
        _variable_set(self.lease_key(config), lease_to_json(lease) if lease else "null")

    def clear(self, config: SpotfireConnectionConfig) -> None:
        """Forget the shared grant and lease (after ``airflow-spotfire revoke``)."""
        for key in (self.key(config), self.lease_key(config)):
            if _variable_get(key) is not None:
                _variable_delete(key)


_DESCRIPTION = "Shared Spotfire OAuth2 tokens, written by airflow-provider-spotfire (do not edit)"


def _in_task_process() -> bool:
    """True inside a running task/trigger process, where the Task SDK talks to the supervisor."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _variable_get(key: str) -> str | None:
    """Read a Variable, bypassing the Task SDK's secrets cache: a stale lease would be wrong."""
    if _in_task_process():
        from airflow.sdk import Variable as SdkVariable

        try:
            from airflow.sdk.execution_time.cache import SecretCache

            SecretCache.invalidate_variable(key)
        except (ImportError, AttributeError):
            pass
        value = SdkVariable.get(key, default=None)
        return None if value is None else str(value)
    from airflow.models.variable import Variable

    value = Variable.get(key, default_var=None)
    return None if value is None else str(value)


def _variable_set(key: str, value: str) -> None:
    if _in_task_process():
        from airflow.sdk import Variable as SdkVariable

        SdkVariable.set(key, value, description=_DESCRIPTION)
        return
    from airflow.models.variable import Variable

    Variable.set(key, value, description=_DESCRIPTION)


def _variable_delete(key: str) -> None:
    if _in_task_process():
        from airflow.sdk import Variable as SdkVariable

        SdkVariable.delete(key)
        return
    from airflow.models.variable import Variable

    Variable.delete(key)


__all__ = [
    "Lease",
    "RefreshTokenStore",
    "StoredGrant",
    "VariableRefreshTokenStore",
    "as_stored_grant",
    "fingerprint",
    "lease_from_json",
    "lease_to_json",
]
