"""The HTTP side of login/revoke: our SyncTransport (no retries: a person is waiting) and discovery."""

from __future__ import annotations

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import RetryPolicy, SyncTransport
from airflow_provider_spotfire.oauth.clock import SYSTEM_CLOCK
from airflow_provider_spotfire.oauth.discovery import ServerEndpoints
from airflow_provider_spotfire.oauth.drivers import run_sync
from airflow_provider_spotfire.oauth.fetch import discover_flow

ONE_ATTEMPT = RetryPolicy(max_attempts=1)


def open_transport(config: SpotfireConnectionConfig) -> SyncTransport:
    """A transport with the connection's TLS and timeout settings that reports failures at once."""
    return SyncTransport(
        verify=config.verify, timeout=config.timeout, policy=ONE_ATTEMPT, client_id=config.client_id
    )


def discover(config: SpotfireConnectionConfig, transport: SyncTransport | None = None) -> ServerEndpoints:
    """Endpoints from the server's RFC 8414 metadata; Spotfire's documented paths when it has none."""
    own = transport is None
    transport = transport or open_transport(config)
    try:
        return run_sync(discover_flow(config), transport, None, config, SYSTEM_CLOCK)
    finally:
        if own:
            transport.close()
