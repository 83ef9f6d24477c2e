"""Grant types as small strategy objects: adding a grant is adding one module here.

A grant says what its token request body holds, how its tokens are keyed in the cache, whether
the request is safe to repeat, and whether its tokens are shared across processes through the
:class:`~airflow_provider_spotfire.oauth.store.RefreshTokenStore`.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire.oauth.grants.authorization_code import AuthorizationCodeGrant
from airflow_provider_spotfire.oauth.grants.client_credentials import ClientCredentialsGrant
from airflow_provider_spotfire.oauth.grants.refresh_token import ALL_GRANTED, RefreshTokenGrant


class Grant(Protocol):
    """What the token code needs to know about one OAuth2 grant type."""

    name: ClassVar[str]
    idempotent: ClassVar[bool]  # a lost answer can be asked again without harm
    shared: ClassVar[bool]  # tokens live in the shared store (one refresh for all processes)

    def validate(self, config: SpotfireConnectionConfig) -> None: ...

    def cache_key(self, config: SpotfireConnectionConfig, scopes: tuple[str, ...]) -> frozenset[str]: ...

    def form_fields(self, key: frozenset[str], **inputs: str) -> dict[str, str]: ...


_GRANTS: dict[str, Grant] = {
    g.name: g for g in (ClientCredentialsGrant(), RefreshTokenGrant(), AuthorizationCodeGrant())
}


def grant_for(config: SpotfireConnectionConfig) -> Grant:
    """The strategy of the connection's ``grant_type``, validated against the connection."""
    grant = _GRANTS[config.grant_type]
    grant.validate(config)
    return grant


__all__ = [
    "ALL_GRANTED",
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "Grant",
    "RefreshTokenGrant",
    "grant_for",
]
