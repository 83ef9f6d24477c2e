"""``airflow-spotfire revoke``: revoke the refresh token at the server (RFC 7009) and forget it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import SyncTransport
from airflow_provider_spotfire._login.connection import locate, login_config, update_db_extra, with_token
from airflow_provider_spotfire._login.errors import LoginError, reason
from airflow_provider_spotfire._login.transport import discover, open_transport
from airflow_provider_spotfire._secrets import mask
from airflow_provider_spotfire.exceptions import SpotfireApiError
from airflow_provider_spotfire.oauth.store import RefreshTokenStore, VariableRefreshTokenStore
from airflow_provider_spotfire.oauth.token import revocation_request


@dataclass(frozen=True)
class RevokeResult:
    """Outcome of :func:`run_revoke`."""

    conn_id: str
    revoked: int
    removed_from_connection: bool
    variable_cleared: bool
    location: str


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _revoke_all(transport: SyncTransport, config: SpotfireConnectionConfig, tokens: list[str]) -> None:
    endpoint = discover(config, transport).revocation_endpoint
    for token in tokens:
        try:
            transport.send(revocation_request(config, endpoint, token), idempotent=True)
        except SpotfireApiError as exc:
            raise LoginError(
                f"Spotfire refused to revoke the refresh token: {reason(exc)}. The token was kept in the "
                "connection. Check the client id/secret of the connection and run revoke again."
            ) from None


def run_revoke(
    conn_id: str,
    *,
    echo: Callable[[str], None] = _stderr,
    store: RefreshTokenStore | None = None,
) -> RevokeResult:
    """Revoke the connection's refresh token (and the one rotated from it) at Spotfire and remove them.

    The token is removed from the connection only if the connection lives in the metadata DB;
    for env var / secrets backend connections the caller must remove it there. The shared
    tokens are removed with the store's own ``clear``.
    """
    store = store or VariableRefreshTokenStore()
    located = locate(conn_id)
    in_connection = located.refresh_token()
    config = replace(login_config(located, conn_id), refresh_token=in_connection)
    shared = store.load(config) if in_connection else None
    rotated = shared.refresh_token if shared is not None else None
    tokens = [t for t in dict.fromkeys([rotated, in_connection]) if t]
    if not tokens:
        raise LoginError(
            f"Connection {conn_id!r} has no refresh token to revoke (no refresh_token extra and no shared "
            "rotated token). Nothing to do."
        )
    for token in tokens:
        mask(token)
    transport = open_transport(config)
    try:
        _revoke_all(transport, config, tokens)
    finally:
        transport.close()
    echo(f"Revoked {len(tokens)} refresh token(s) of client {config.client_id!r} at {config.server_url}.")
    store.clear(config)
    if located.in_metadata_db:
        update_db_extra(conn_id, lambda current: with_token(current, None))
    return RevokeResult(
        conn_id=conn_id,
        revoked=len(tokens),
        removed_from_connection=located.in_metadata_db,
        variable_cleared=shared is not None,
        location=located.where,
    )
