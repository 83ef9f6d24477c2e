"""OAuth 2.0 state of the emulator: opaque access/refresh tokens and authorization codes, by grant."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

from airflow_provider_spotfire.emulator.core import Activity, Clock


@dataclass
class Token:
    """An opaque access or refresh token."""

    value: str
    kind: str  # "access" | "refresh"
    client_id: str
    user_id: str
    scopes: list[str]
    issued_at: float
    expires_at: float | None
    grant_id: str
    revoked: bool = False
    rotated: bool = False  # a refresh token replaced by rotation (used once)

    def valid(self, now: float) -> bool:
        """Not revoked and not expired."""
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


@dataclass
class AuthCode:
    """An authorization code issued by the authorization endpoint."""

    code: str
    client_id: str
    redirect_uri: str
    redirect_uri_in_request: bool
    scopes: list[str]
    user_id: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    grant_id: str
    used: bool = False


class TokenStore:
    """Tokens (by value and by grant) and authorization codes.

    A grant is one authorization: a code exchange with every refresh descended from it, or one client
    credentials issuance. Revoking a grant revokes all its tokens.
    """

    def __init__(self, lock: threading.RLock, clock: Clock, activity: Activity) -> None:
        self._lock = lock
        self._clock = clock
        self._activity = activity
        self.tokens: dict[str, Token] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self._by_grant: dict[str, list[Token]] = {}

    def issue(
        self,
        kind: str,
        client_id: str,
        user_id: str,
        scopes: list[str],
        lifetime: float | None,
        grant_id: str,
    ) -> Token:
        """Create and store an opaque token (``lifetime`` None = never expires)."""
        with self._lock:
            now = self._clock.now()
            tok = Token(
                value=secrets.token_urlsafe(32),
                kind=kind,
                client_id=client_id,
                user_id=user_id,
                scopes=list(scopes),
                issued_at=now,
                expires_at=None if lifetime is None else now + lifetime,
                grant_id=grant_id,
            )
            self.tokens[tok.value] = tok
            self._by_grant.setdefault(grant_id, []).append(tok)
            return tok

    def revoke_grant(self, grant_id: str) -> int:
        """Revoke every token of one grant; counts ``grants_revoked`` when live tokens were revoked."""
        with self._lock:
            n = 0
            for t in self._by_grant.get(grant_id, []):
                if not t.revoked:
                    t.revoked = True
                    n += 1
            if n:
                self._activity.count("grants_revoked")
            return n

    def revoke_client_tokens(self, client_id: str | None = None) -> int:
        """Revoke all tokens (of one client, or of everyone)."""
        with self._lock:
            n = 0
            for t in self.tokens.values():
                if (client_id is None or t.client_id == client_id) and not t.revoked:
                    t.revoked = True
                    n += 1
            return n

    def active(self, kind: str, now: float) -> int:
        """Number of valid tokens of one kind."""
        with self._lock:
            return sum(1 for t in self.tokens.values() if t.kind == kind and t.valid(now))

    def snapshot(self, now: float) -> dict[str, Any]:
        """Token counts for ``GET /_emulator/state``."""
        return {"active_access": self.active("access", now), "active_refresh": self.active("refresh", now)}
