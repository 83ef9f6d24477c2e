"""SpotfireHook (sync, requests) and SpotfireAsyncHook (async, aiohttp) for the ``spotfire`` connection."""

from __future__ import annotations

from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireConfigurationError,
    SpotfireTLSError,
    SpotfireTransportError,
)
from airflow_provider_spotfire.hooks.automation import AutomationHookMixin
from airflow_provider_spotfire.hooks.base import SpotfireAsyncHookBase, SpotfireHookBase
from airflow_provider_spotfire.hooks.library import LibraryAsyncHookMixin, LibraryHookMixin
from airflow_provider_spotfire.hooks.licenses import LicenseHookMixin
from airflow_provider_spotfire.license_sync import LicenseSyncHookMixin


class SpotfireHook(
    LibraryHookMixin, AutomationHookMixin, LicenseHookMixin, LicenseSyncHookMixin, SpotfireHookBase
):
    """Talks to Spotfire Server over OAuth2: library upload, Automation Services and licenses.

    Tokens are cached per scope set (process-wide) and renewed ahead of expiry; retries honour
    ``Retry-After``; every HTTP error becomes a typed :class:`~airflow_provider_spotfire.exceptions.SpotfireApiError`.
    No network I/O happens until the first call.

    :param spotfire_conn_id: the ``spotfire`` connection to use.
    :param retry_policy: override the retry limits (:class:`~airflow_provider_spotfire.RetryPolicy`).
    :param refresh_token_store: where rotated refresh tokens are persisted (default: an Airflow Variable).
    """

    def test_connection(self) -> tuple[bool, str]:
        """Obtain a token for each API scope and say which are granted (the UI's "Test" button)."""
        try:
            cfg = self.config
        except SpotfireConfigurationError as exc:
            return False, str(exc)
        except Exception as exc:  # connection not found etc.
            return False, f"{type(exc).__name__}: {exc}"
        candidates = list(cfg.scopes_override or S.ALL_API_SCOPES)
        if cfg.grant_type == "refresh_token":
            candidates = candidates[:1]
        granted: list[str] = []
        refused: list[str] = []
        for scope in candidates:
            try:
                token = self.token_manager.get_token(self.transport, (scope,))
            except SpotfireTLSError as exc:
                return False, f"TLS failure talking to {cfg.base_url}: {exc}"
            except SpotfireTransportError as exc:
                return False, f"Server unreachable at {cfg.server_url}: {exc}"
            except SpotfireApiError as exc:
                if exc.code in ("invalid_client", "invalid_grant") or exc.status_code == 401:
                    return False, f"Bad client id/secret or refresh token: {exc}"
                if exc.code in ("invalid_scope", "unauthorized_client", "access_denied"):
                    refused.append(scope)
                    continue
                return False, f"Token request failed: {exc}"
            granted.extend(sorted(token.scopes - {"*"}) or [scope])
        if not granted:
            return False, (
                f"API client {cfg.client_id!r} authenticated but was granted none of the scopes "
                f"{', '.join(refused)}; register it for the APIs you need (register-api-client -S<scope>)."
            )
        message = f"Connected to {cfg.server_url} as {cfg.client_id!r}; scopes granted: {', '.join(sorted(set(granted)))}"
        if refused:
            message += f"; not granted: {', '.join(refused)}"
        return True, message


class SpotfireAsyncHook(
    LibraryAsyncHookMixin, AutomationHookMixin, LicenseHookMixin, LicenseSyncHookMixin, SpotfireAsyncHookBase
):
    """Async twin of :class:`SpotfireHook` for triggers (aiohttp; connection via ``get_async_connection``).

    The same methods, awaitable (each is one operation flow run by the async driver). Shares the
    process-wide token cache with every other hook of the same connection, so 1,000 triggers in
    one triggerer ask the token endpoint once.
    """


__all__ = ["SpotfireAsyncHook", "SpotfireHook"]
