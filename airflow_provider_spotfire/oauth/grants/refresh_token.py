"""RFC 6749 6: tasks act as the user who ran ``airflow-spotfire login`` (profiles web/native)."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_spotfire._connection import GRANT_REFRESH_TOKEN, SpotfireConnectionConfig
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError

ALL_GRANTED = frozenset({"*"})  # cache key: one token carrying every scope granted at login


class RefreshTokenGrant:
    """One token for every granted scope; a refresh may rotate the refresh token, so never repeat it."""

    name: ClassVar[str] = GRANT_REFRESH_TOKEN
    idempotent: ClassVar[bool] = False  # a lost answer may have rotated the token: resending reuses it
    shared: ClassVar[bool] = True

    def validate(self, config: SpotfireConnectionConfig) -> None:
        if not config.refresh_token:
            raise SpotfireConfigurationError(
                f"Spotfire connection {config.conn_id!r} uses grant_type refresh_token but has no "
                f"refresh_token. Obtain one with `airflow-spotfire login --conn-id {config.conn_id}`."
            )

    def cache_key(self, config: SpotfireConnectionConfig, scopes: tuple[str, ...]) -> frozenset[str]:
        return ALL_GRANTED

    def form_fields(self, key: frozenset[str], **inputs: str) -> dict[str, str]:
        return {"grant_type": self.name, "refresh_token": inputs["refresh_token"]}
