"""SpotfireHook (sync, requests) and SpotfireAsyncHook (async, aiohttp) for the ``spotfire`` connection."""

from __future__ import annotations

from airflow_provider_spotfire import license_sync
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireConfigurationError,
    SpotfireTLSError,
    SpotfireTransportError,
)
from airflow_provider_spotfire.hooks import automation, licenses
from airflow_provider_spotfire.hooks.base import SpotfireAsyncHookBase, SpotfireHookBase, hook_operation
from airflow_provider_spotfire.hooks.library import LibraryAsyncHookMixin, LibraryHookMixin


class SpotfireApiMethods:
    """The API methods of both hooks that are one operation flow each (see :class:`~.hooks.base.hook_operation`).

    A method of :class:`SpotfireHook`, an awaitable one of :class:`SpotfireAsyncHook`; the flows
    live in ``hooks/automation.py``, ``hooks/licenses.py`` and ``license_sync.py``.
    """

    # Automation Services REST API v1
    start_automation_job_from_library = hook_operation(automation.start_automation_job_from_library)
    start_automation_job_from_xml = hook_operation(automation.start_automation_job_from_xml)
    start_automation_job = hook_operation(automation.start_automation_job)
    get_automation_job_status = hook_operation(automation.get_automation_job_status)
    abort_automation_job = hook_operation(automation.abort_automation_job)
    # License management REST API v1
    list_licenses = hook_operation(licenses.list_licenses)
    get_user_licenses = hook_operation(licenses.get_user_licenses)
    get_user_license_functions = hook_operation(licenses.get_user_license_functions)
    get_group_licenses = hook_operation(licenses.get_group_licenses)
    get_group_license_functions = hook_operation(licenses.get_group_license_functions)
    get_license_functions = hook_operation(licenses.get_license_functions)
    set_group_license = hook_operation(licenses.set_group_license)
    remove_group_license = hook_operation(licenses.remove_group_license)
    # checked license changes: validated first, fewest writes, verified after
    sync_group_licenses = hook_operation(license_sync.sync_group_licenses)


class SpotfireHook(LibraryHookMixin, SpotfireApiMethods, SpotfireHookBase):
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


class SpotfireAsyncHook(LibraryAsyncHookMixin, SpotfireApiMethods, SpotfireAsyncHookBase):
    """Async twin of :class:`SpotfireHook` for triggers (aiohttp; connection via ``get_async_connection``).

    The same methods, awaitable (each is one operation flow run by the async driver). Shares the
    process-wide token cache with every other hook of the same connection, so 1,000 triggers in
    one triggerer ask the token endpoint once.
    """


__all__ = ["SpotfireApiMethods", "SpotfireAsyncHook", "SpotfireHook"]
