"""RFC 6749 4.1 with PKCE (RFC 7636): the code exchange of ``airflow-spotfire login``."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_spotfire._connection import SpotfireConnectionConfig

GRANT_AUTHORIZATION_CODE = "authorization_code"


class AuthorizationCodeGrant:
    """Used once per login; the code is single-use, so the exchange is never repeated."""

    name: ClassVar[str] = GRANT_AUTHORIZATION_CODE
    idempotent: ClassVar[bool] = False
    shared: ClassVar[bool] = False

    def validate(self, config: SpotfireConnectionConfig) -> None:
        return None  # any web/native client; the server checks the registration

    def cache_key(self, config: SpotfireConnectionConfig, scopes: tuple[str, ...]) -> frozenset[str]:
        return frozenset(scopes)

    def form_fields(self, key: frozenset[str], **inputs: str) -> dict[str, str]:
        return {
            "grant_type": self.name,
            "code": inputs["code"],
            "redirect_uri": inputs["redirect_uri"],
            "code_verifier": inputs["code_verifier"],
        }
