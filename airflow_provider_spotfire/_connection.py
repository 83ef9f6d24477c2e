"""Parse and validate a ``spotfire`` Airflow connection into a :class:`SpotfireConnectionConfig`.

Everything the sync hook and the async hook need from the connection is read here, once.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError

DEFAULT_CONN_ID = "spotfire_default"
"""The connection id every hook, operator, sensor, trigger and asset uses unless told otherwise."""

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_REFRESH_TOKEN = "refresh_token"
GRANT_TYPES = (GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN)
AUTH_BASIC = "client_secret_basic"
AUTH_POST = "client_secret_post"
AUTH_METHODS = (AUTH_BASIC, AUTH_POST)
log = logging.getLogger(__name__)

DEFAULT_CONTEXT_PATH = "/spotfire"
DEFAULT_TIMEOUT = 60.0
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


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
    if text in validate.TRUE_WORDS:
        return True
    if text in validate.FALSE_WORDS:
        return False
    raise SpotfireConfigurationError(f"Connection extra {name!r} must be true or false, got {value!r}.")


@dataclass(frozen=True)
class SpotfireConnectionConfig:
    """Validated settings of one ``spotfire`` connection (server URL, client, grant, TLS, timeout, poll)."""

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
    poll_interval: float | None = None  # seconds between job status polls; None: each task's own default

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
        base_url, context_path = _server_location(conn, extra, where)
        client_id, client_secret, grant_type, refresh_token = _client(conn, extra, where, conn_id)
        return cls(
            conn_id=conn_id,
            base_url=base_url,
            context_path=context_path,
            client_id=client_id,
            client_secret=client_secret,
            grant_type=grant_type,
            refresh_token=refresh_token,
            scopes_override=_scopes(extra.get("scopes")),
            token_auth_method=_auth_method(extra, where),
            verify=validate.tls_verify(extra.get("verify", True), where),
            timeout=_timeout(extra.get("timeout"), where),
            poll_interval=_poll_interval(extra.get("poll_interval"), where),
        )


_SCHEME_TYPO = re.compile(r"^(https?)(:/?|/+)(?!/)", re.IGNORECASE)


def _server_location(conn: Any, extra: dict[str, Any], where: str) -> tuple[str, str]:
    """(``scheme://host[:port]``, context path) from the host, port and ``context_path`` extra."""
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        raise SpotfireConfigurationError(
            f"{where} has no host. Set it to the server's base URL, e.g. https://spotfire.example.com:8443."
        )
    typo = _SCHEME_TYPO.match(host) if "://" not in host else None
    if typo:
        fixed = f"{typo.group(1).lower()}://{host[typo.end() :]}"
        raise SpotfireConfigurationError(
            f"{where}: host {host!r} has a malformed scheme (the ':' or a '/' of '://' is missing); "
            f"write it as {fixed}."
        )
    if "://" not in host:
        host = "https://" + host  # a bare host name means https
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpotfireConfigurationError(
            f"{where}: host {host!r} is not an http(s) URL. Use e.g. https://spotfire.example.com."
        )
    if any(ch.isspace() for ch in host):
        raise SpotfireConfigurationError(f"{where}: host {host!r} contains white space; remove it.")
    try:
        port = getattr(conn, "port", None) or parts.port
    except ValueError:
        raise SpotfireConfigurationError(
            f"{where}: host {host!r} has an invalid port; use a number from 1 to 65535, e.g. :8443."
        ) from None
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    base_url = f"{parts.scheme}://{netloc}" + (f":{port}" if port else "")

    allow_http = _as_bool("allow_insecure_http", extra.get("allow_insecure_http"), False)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname) and not allow_http:
        raise SpotfireConfigurationError(
            f"{where} uses plain http to {parts.hostname}: OAuth2 tokens and client secrets would "
            "travel unencrypted. Use https, or set the extra allow_insecure_http=true if you really "
            "mean it (http is always allowed for localhost/127.0.0.1/[::1])."
        )
    # context_path "" (or "/") is a server mounted at the root: honoured, not the default.
    context_path = extra.get("context_path")
    if context_path is None:
        context_path = parts.path.rstrip("/") or DEFAULT_CONTEXT_PATH
    text = str(context_path).strip().strip("/")
    return base_url, "/" + text if text else ""


def _client(
    conn: Any, extra: dict[str, Any], where: str, conn_id: str
) -> tuple[str, str | None, str, str | None]:
    """(client id, client secret, grant type, refresh token), checked against each other."""
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
    return client_id, client_secret, grant_type, refresh_token


def _auth_method(extra: dict[str, Any], where: str) -> str:
    # "client_auth_method"; "token_auth_method" is still read, but Airflow masks any extra whose
    # name contains "token", so the UI would show and save it as "***".
    method_key = "client_auth_method" if extra.get("client_auth_method") else "token_auth_method"
    method = (extra.get(method_key) or AUTH_BASIC).strip()
    if method not in AUTH_METHODS:
        raise SpotfireConfigurationError(
            f"{where}: {method_key} {method!r} is not supported; use one of {', '.join(AUTH_METHODS)}."
        )
    return method


def _scopes(raw: Any) -> tuple[str, ...] | None:
    if not raw:
        return None
    items = raw if isinstance(raw, list) else str(raw).replace(",", " ").split()
    return tuple(sorted({str(s).strip() for s in items if str(s).strip()})) or None


def _seconds_extra(name: str, raw: Any, where: str, *, when_unset: str) -> float | None:
    """An optional extra in seconds (``None`` when unset); a bad value's error says what unset means."""
    if raw in (None, ""):
        return None
    try:
        return validate.seconds(name, raw)
    except SpotfireConfigurationError as exc:
        raise SpotfireConfigurationError(f"{where}: extra {str(exc).rstrip('.')} ({when_unset}).") from None


def _timeout(raw: Any, where: str) -> float:
    timeout = _seconds_extra("timeout", raw, where, when_unset=f"default {DEFAULT_TIMEOUT:g}")
    return DEFAULT_TIMEOUT if timeout is None else timeout


def _poll_interval(raw: Any, where: str) -> float | None:
    """The ``poll_interval`` extra: seconds between job status polls of the tasks that wait (optional)."""
    return _seconds_extra(
        "poll_interval",
        raw,
        where,
        when_unset="leave it unset for each task's default: 15 s for Automation Services jobs, 5 s for "
        "upload jobs",
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
        # "context_path": "" means a server at the root. Legacy-prefixed empty values are dropped:
        # Airflow 2 forms saved "" for every field left untouched.
        if value is not None and (value != "" or key == "context_path"):
            out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Errors that mean "the connection points at the wrong place" (used by the transports and hooks)
# ---------------------------------------------------------------------------------------------
# OpenSSL reasons for a TLS client that got a plain-HTTP answer (1.1/3.0: WRONG_VERSION_NUMBER,
# 3.2+: RECORD_LAYER_FAILURE; some builds: PACKET_LENGTH_TOO_LONG, UNKNOWN_PROTOCOL).
_PLAIN_HTTP_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
    }
)
_PLAIN_HTTP_TEXT = (
    "wrong version number",
    "record layer failure",
    "packet length too long",
    "unknown protocol",
)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (cause, context, urllib3's ``reason``, exception args), breadth first."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo.extend(e for e in nested if isinstance(e, BaseException))
    return seen


def is_plain_http_answer(exc: BaseException) -> bool:
    """True when a TLS handshake failed because the port answered in plain HTTP (not a certificate issue)."""
    for err in _causes(exc):
        if isinstance(err, ssl.SSLError) and getattr(err, "reason", None) in _PLAIN_HTTP_REASONS:
            return True
    text = " ".join(str(e) for e in _causes(exc)).lower()
    return any(marker in text for marker in _PLAIN_HTTP_TEXT)


def plain_http_message(method: str, path: str) -> str:
    return (
        f"TLS handshake failed for {method} {path}: the port speaks plain HTTP, not HTTPS. Use an "
        "http:// host (allowed for localhost, else extra allow_insecure_http=true) or the server's "
        "HTTPS port; installing a CA bundle will not help."
    )


def token_endpoint_not_found(config: SpotfireConnectionConfig, path: str) -> SpotfireConfigurationError:
    """The token endpoint answered 404: host, port or context path of the connection is wrong."""
    return SpotfireConfigurationError(
        f"Spotfire connection {config.conn_id!r}: the OAuth2 token endpoint {path} answered 404, so "
        f"{config.server_url} is not a Spotfire Server. Check the host and port, and the extra "
        f"context_path (now {config.context_path or '(empty: server at the root)'!r}; Spotfire's "
        'default is /spotfire, use "" for a server mounted at the root).'
    )


def connection_lookup_failed(conn_id: str, exc: BaseException) -> SpotfireConfigurationError:
    """The trigger's hook could not read the connection: name the in-process-trigger limitation."""
    return SpotfireConfigurationError(
        f"Spotfire connection {conn_id!r} could not be read where the trigger runs ({type(exc).__name__}: "
        f"{exc}). Triggers read connections through the Task SDK; under `airflow dags test` (and "
        "dag.test()) the in-process triggerer cannot read connections stored only in the metadata "
        f"database. Define it as an environment variable AIRFLOW_CONN_{conn_id.upper()} (JSON or URI) or in "
        "a secrets backend, or run the task with deferrable=False."
    )


_warned_unverified: set[str] = set()


def warn_unverified_once(config: SpotfireConnectionConfig) -> None:
    """With ``verify=false``: one warning per connection, and urllib3's per-request warning silenced for its host."""
    if config.verify is not False or not config.base_url.startswith("https://"):
        return
    host = urlsplit(config.base_url).hostname or ""
    key = f"{config.conn_id}|{config.base_url}"
    if key in _warned_unverified:
        return
    _warned_unverified.add(key)
    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings(
        "ignore",
        message=f"Unverified HTTPS request is being made to host '{re.escape(host)}'",
        category=InsecureRequestWarning,
    )
    log.warning(
        "Spotfire connection %r has verify=false: the certificate of %s is not checked, so anyone on "
        "the network path can read the client secret and tokens. Point verify at the server's CA bundle "
        "instead. (Logged once per connection.)",
        config.conn_id,
        config.base_url,
    )
