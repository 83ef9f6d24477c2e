"""Parse and validate a ``spotfire`` Airflow connection into a :class:`SpotfireConnectionConfig`.

Everything the sync hook and the async hook need from the connection is read here, once.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_spotfire.exceptions import SpotfireConfigurationError

DEFAULT_CONN_ID = "spotfire_default"
"""The connection id every hook, operator, sensor, trigger and asset uses unless told otherwise."""

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_REFRESH_TOKEN = "refresh_token"
GRANT_TYPES = (GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN)
AUTH_BASIC = "client_secret_basic"
AUTH_POST = "client_secret_post"
AUTH_METHODS = (AUTH_BASIC, AUTH_POST)
DEFAULT_CONTEXT_PATH = "/spotfire"
DEFAULT_TIMEOUT = 60.0
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _as_bool(name: str, value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SpotfireConfigurationError(f"Connection extra {name!r} must be true or false, got {value!r}.")


@dataclass(frozen=True)
class SpotfireConnectionConfig:
    """Validated settings of one ``spotfire`` connection (server URL, client, grant, TLS, timeout)."""

    conn_id: str
    base_url: str  # scheme://host[:port], no trailing slash
    context_path: str  # "/spotfire" or "" -- where the server is mounted
    client_id: str
    client_secret: str | None = field(repr=False)
    grant_type: str = GRANT_CLIENT_CREDENTIALS
    refresh_token: str | None = field(default=None, repr=False)
    scopes_override: tuple[str, ...] | None = None
    token_auth_method: str = AUTH_BASIC
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT

    @property
    def server_url(self) -> str:
        """``https://host:port/spotfire`` -- the root of every Spotfire endpoint."""
        return self.base_url + self.context_path

    @property
    def api_url(self) -> str:
        """``https://host:port/spotfire/api`` -- the root of the REST APIs."""
        return self.server_url + "/api"

    @property
    def metadata_url(self) -> str:
        """RFC 8414 authorization server metadata (Spotfire serves it under the context path)."""
        return self.server_url + "/.well-known/oauth-authorization-server"

    @property
    def default_token_url(self) -> str:
        return self.server_url + "/oauth2/token"

    @property
    def cache_identity(self) -> str:
        """What makes two connections share tokens: same server, client and grant."""
        return f"{self.server_url}|{self.client_id}|{self.grant_type}"

    def secrets(self) -> list[str]:
        """Values that must never appear in logs."""
        return [s for s in (self.client_secret, self.refresh_token) if s]

    @classmethod
    def from_connection(cls, conn: Any) -> SpotfireConnectionConfig:
        """Build from an Airflow ``Connection`` (sync or async-fetched); raise one clear error if invalid."""
        conn_id = getattr(conn, "conn_id", None) or DEFAULT_CONN_ID
        extra = _extras(conn)
        where = f"Spotfire connection {conn_id!r}"

        host = (getattr(conn, "host", None) or "").strip()
        if not host:
            raise SpotfireConfigurationError(
                f"{where} has no host. Set it to the server's base URL, e.g. https://spotfire.example.com:8443."
            )
        if "://" not in host:
            host = "https://" + host  # a bare host name means https
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpotfireConfigurationError(
                f"{where}: host {host!r} is not an http(s) URL. Use e.g. https://spotfire.example.com."
            )
        port = getattr(conn, "port", None) or parts.port
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        base_url = f"{parts.scheme}://{netloc}" + (f":{port}" if port else "")

        path_in_host = parts.path.rstrip("/")
        context_path = extra.get("context_path")
        if context_path is None:
            context_path = path_in_host or DEFAULT_CONTEXT_PATH
        context_path = "/" + str(context_path).strip("/") if str(context_path).strip("/") else ""

        allow_http = _as_bool("allow_insecure_http", extra.get("allow_insecure_http"), False)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname) and not allow_http:
            raise SpotfireConfigurationError(
                f"{where} uses plain http to {parts.hostname}: OAuth2 tokens and client secrets would "
                "travel unencrypted. Use https, or set the extra allow_insecure_http=true if you really "
                "mean it (http is always allowed for localhost/127.0.0.1/[::1])."
            )

        client_id = (getattr(conn, "login", None) or "").strip()
        if not client_id:
            raise SpotfireConfigurationError(
                f"{where} has no login. Put the client id printed by Spotfire's register-api-client in Login."
            )
        client_secret = getattr(conn, "password", None) or None

        grant_type = (extra.get("grant_type") or GRANT_CLIENT_CREDENTIALS).strip()
        if grant_type not in GRANT_TYPES:
            raise SpotfireConfigurationError(
                f"{where}: grant_type {grant_type!r} is not supported; use one of {', '.join(GRANT_TYPES)}."
            )
        refresh_token = extra.get("refresh_token") or None
        if grant_type == GRANT_CLIENT_CREDENTIALS and not client_secret:
            raise SpotfireConfigurationError(
                f"{where} has no password. Put the client secret of the API client (profile 'other') in "
                "Password, or use grant_type refresh_token for web/native clients."
            )
        if grant_type == GRANT_REFRESH_TOKEN and not refresh_token:
            raise SpotfireConfigurationError(
                f"{where} uses grant_type refresh_token but has no refresh_token extra. Obtain one with "
                f"`airflow-spotfire login --conn-id {conn_id}`."
            )

        # "client_auth_method"; "token_auth_method" is still read, but Airflow masks any extra whose
        # name contains "token", so the UI would show and save it as "***".
        method_key = "client_auth_method" if extra.get("client_auth_method") else "token_auth_method"
        method = (extra.get(method_key) or AUTH_BASIC).strip()
        if method not in AUTH_METHODS:
            raise SpotfireConfigurationError(
                f"{where}: {method_key} {method!r} is not supported; use one of {', '.join(AUTH_METHODS)}."
            )

        scopes_raw = extra.get("scopes")
        scopes: tuple[str, ...] | None = None
        if scopes_raw:
            items = scopes_raw if isinstance(scopes_raw, list) else str(scopes_raw).replace(",", " ").split()
            scopes = tuple(sorted({str(s).strip() for s in items if str(s).strip()})) or None

        verify_raw = extra.get("verify", True)
        verify: bool | str
        if isinstance(verify_raw, bool):
            verify = verify_raw
        elif str(verify_raw).strip().lower() in _TRUE | {""}:
            verify = True
        elif str(verify_raw).strip().lower() in _FALSE:
            verify = False
        else:
            verify = str(verify_raw).strip()  # a CA bundle path

        timeout_raw = extra.get("timeout")
        try:
            timeout = float(timeout_raw) if timeout_raw not in (None, "") else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            raise SpotfireConfigurationError(
                f"{where}: timeout must be a number of seconds, got {timeout_raw!r}."
            ) from None
        if timeout <= 0:
            raise SpotfireConfigurationError(f"{where}: timeout must be positive, got {timeout}.")

        return cls(
            conn_id=conn_id,
            base_url=base_url,
            context_path=context_path,
            client_id=client_id,
            client_secret=client_secret,
            grant_type=grant_type,
            refresh_token=refresh_token,
            scopes_override=scopes,
            token_auth_method=method,
            verify=verify,
            timeout=timeout,
        )


def _extras(conn: Any) -> dict[str, Any]:
    """Read extras forgivingly; accept the legacy ``extra__spotfire__`` prefix.

    The raw ``extra`` JSON string is parsed here rather than through ``extra_dejson``, which on
    some Airflow versions registers secrets with a blocking supervisor call -- not allowed in a
    trigger's event loop. The hooks mask the sensitive values themselves.
    """
    text = getattr(conn, "extra", None)
    if isinstance(text, str) and text.strip():
        try:
            raw = json.loads(text)
        except ValueError:
            raise SpotfireConfigurationError(
                f"Spotfire connection {getattr(conn, 'conn_id', '?')!r}: extra is not valid JSON."
            ) from None
    else:
        raw = getattr(conn, "extra_dejson", None) or {}
    if not isinstance(raw, dict):
        raise SpotfireConfigurationError(
            f"Spotfire connection {getattr(conn, 'conn_id', '?')!r}: extra must be a JSON object."
        )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.removeprefix("extra__spotfire__")
        if value is not None and value != "":
            out[name] = value
    return out
