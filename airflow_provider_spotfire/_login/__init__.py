"""Bootstrap (``login``) and retire (``revoke``) the refresh token of a ``spotfire`` connection.

One module per role: :mod:`.connection` (find, read and update the connection),
:mod:`.callback` (the loopback redirect receiver), :mod:`.authorization` (the authorization
request and the checks of its response), :mod:`.signin` (``login``), :mod:`.revoke`
(``revoke``), :mod:`.transport` (our SyncTransport and RFC 8414 discovery).
"""

from __future__ import annotations

from airflow_provider_spotfire._login.authorization import check_authorization_response
from airflow_provider_spotfire._login.callback import CALLBACK_PATH
from airflow_provider_spotfire._login.errors import LoginError
from airflow_provider_spotfire._login.revoke import RevokeResult, run_revoke
from airflow_provider_spotfire._login.signin import DEFAULT_TIMEOUT, LoginResult, run_login
from airflow_provider_spotfire._login.transport import discover
from airflow_provider_spotfire.oauth.discovery import ServerEndpoints

__all__ = [
    "CALLBACK_PATH",
    "DEFAULT_TIMEOUT",
    "LoginError",
    "LoginResult",
    "RevokeResult",
    "ServerEndpoints",
    "check_authorization_response",
    "discover",
    "run_login",
    "run_revoke",
]
