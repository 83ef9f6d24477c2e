"""RFC 6749 4.4: the API client acts as itself (Spotfire client profile ``other``)."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_spotfire._connection import GRANT_CLIENT_CREDENTIALS, SpotfireConnectionConfig
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError


class ClientCredentialsGrant:
    """One token per scope set, asked for again freely: nothing to share or rotate."""

    name: ClassVar[str] = GRANT_CLIENT_CREDENTIALS
    idempotent: ClassVar[bool] = True
    shared: ClassVar[bool] = False

    def validate(self, config: SpotfireConnectionConfig) -> None:
        if not config.client_secret:
            raise SpotfireConfigurationError(
                f"Spotfire connection {config.conn_id!r}: client_credentials needs the client secret in "
                "Password (API client profile 'other')."
            )

    def cache_key(self, config: SpotfireConnectionConfig, scopes: tuple[str, ...]) -> frozenset[str]:
        return frozenset(config.scopes_override or scopes)

    def form_fields(self, key: frozenset[str], **inputs: str) -> dict[str, str]:
        fields = {"grant_type": self.name}
        if key:
            fields["scope"] = " ".join(sorted(key))
        return fields
