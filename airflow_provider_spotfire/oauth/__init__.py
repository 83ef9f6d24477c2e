"""OAuth2 for Spotfire Server, written once for the hooks and ``airflow-spotfire login``/``revoke``.

One module per role: :mod:`.client_auth` (RFC 6749 2.3), :mod:`.discovery` (RFC 8414),
:mod:`.grants` (one strategy per grant type), :mod:`.token` (requests and responses),
:mod:`.store` (the shared grant), :mod:`.lease` (one refresh for the deployment),
:mod:`.fetch` / :mod:`.effects` / :mod:`.drivers` (sans-IO flows and their sync/async drivers),
:mod:`.manager` (the per-process cache).
"""

from __future__ import annotations

from airflow_provider_spotfire.oauth.clock import Clock, SystemClock
from airflow_provider_spotfire.oauth.lease import LeaseTimings
from airflow_provider_spotfire.oauth.manager import TokenManager
from airflow_provider_spotfire.oauth.store import (
    Lease,
    RefreshTokenStore,
    StoredGrant,
    VariableRefreshTokenStore,
)
from airflow_provider_spotfire.oauth.token import DEFAULT_LIFETIME, Token

__all__ = [
    "DEFAULT_LIFETIME",
    "Clock",
    "Lease",
    "LeaseTimings",
    "RefreshTokenStore",
    "StoredGrant",
    "SystemClock",
    "Token",
    "TokenManager",
    "VariableRefreshTokenStore",
]
