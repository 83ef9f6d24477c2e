"""The description of one Spotfire REST call, independent of sync or async I/O.

Each API module (``library``, ``automation``, ``licenses``) builds :class:`ApiRequest` objects
and parses responses; :class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireHook` and
:class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireAsyncHook` send them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import HttpRequest, HttpResponse
from airflow_provider_spotfire.exceptions import SpotfireError

T = TypeVar("T")


def _json_body(response: HttpResponse) -> Any:
    return response.json()


@dataclass(frozen=True)
class ApiRequest(Generic[T]):
    """One REST call: method, path, the OAuth2 scope(s) it needs and how to parse the answer.

    ``path`` is relative to ``https://host/spotfire/api/`` (``rest/as/job/status/ID``), or a
    HATEOAS link from the server: path-absolute (``/spotfire/api/...``) or an absolute URL on
    the connection's origin. ``scopes`` lists acceptable scopes, preferred first (the license
    API reads with ``api.licenses.read`` or ``api.licenses.write``).
    """

    method: str
    path: str
    scopes: tuple[str, ...]
    parse: Callable[[HttpResponse], T] = field(default=_json_body)  # type: ignore[assignment]
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = False

    def to_http(self, config: SpotfireConnectionConfig, access_token: str) -> HttpRequest:
        headers = {"Accept": "application/json", **self.headers, "Authorization": f"Bearer {access_token}"}
        return HttpRequest(
            self.method,
            resolve_url(config, self.path),
            params=self.params,
            headers=headers,
            json=self.json,
            content=self.content,
        )


def resolve_url(config: SpotfireConnectionConfig, path: str) -> str:
    """Absolute URL for ``path``; refuses links to another origin (the bearer token goes along)."""
    if path.startswith(("http://", "https://")):
        link, base = urlsplit(path), urlsplit(config.base_url)
        if (link.scheme, link.hostname, link.port) != (base.scheme, base.hostname, base.port):
            raise SpotfireError(
                f"The server returned a link to {link.scheme}://{link.netloc}, which is not the "
                f"connection's origin {config.base_url}; the access token is not sent there."
            )
        return path
    if path.startswith("/"):
        return config.base_url + path
    return f"{config.api_url}/{path}"
