"""Compatibility names: the token code lives in :mod:`airflow_provider_spotfire.oauth`."""

from __future__ import annotations

from airflow_provider_spotfire.oauth import (
    DEFAULT_LIFETIME,
    RefreshTokenStore,
    StoredGrant,
    Token,
    TokenManager,
    VariableRefreshTokenStore,
)

__all__ = [
    "DEFAULT_LIFETIME",
    "RefreshTokenStore",
    "StoredGrant",
    "Token",
    "TokenManager",
    "VariableRefreshTokenStore",
]
