"""License management REST API v1: request builders, response models and error advice.

Every endpoint of ``/spotfire/api/rest/licenses/v1`` is described once, as an :class:`ApiRequest`
builder (``build_<verb>_<object>``); :mod:`airflow_provider_spotfire.hooks.licenses` sends them.

Decisions the spec leaves open:

* Reads ask for ``api.licenses.read`` and fall back to ``api.licenses.write`` (the spec accepts
  either); writes need ``api.licenses.write`` (and an API client in the Administrator group).
* The PUT body is a JSON array of function *names* (``["openFromLibrary", "exportData"]``), the
  same names ``set-license --functions`` takes; an empty array means "all functions".
* Reads are retried on 429/502/503/504 and dropped connections. PUT and DELETE of a license on a
  group are idempotent by nature (PUT sets the whole function set; DELETE leaves the license
  unset however often it is repeated), so they are retried the same way.
* Path segments (license names, group and user ids) are percent-encoded, ``/`` included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireBadRequestError,
    SpotfireConfigurationError,
    SpotfireError,
    SpotfirePermissionError,
)

LICENSES_API = "rest/licenses/v1"
READ_SCOPES: tuple[str, ...] = (S.LICENSES_READ, S.LICENSES_WRITE)
WRITE_SCOPES: tuple[str, ...] = (S.LICENSES_WRITE,)
T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# Response models
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LicenseFunction:
    """One license function, e.g. ``exportData`` ("Export Data")."""

    name: str
    display_name: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-safe form (for XCom)."""
        return {"name": self.name, "display_name": self.display_name}


@dataclass(frozen=True)
class License:
    """A license (e.g. ``Spotfire.Dxp.WebPlayer``, "Spotfire Consumer") and its functions.

    In the catalogue (``list_licenses()``) ``functions`` lists every function
    of the license; for a user or group it lists the functions enabled for them.
    """

    name: str
    display_name: str = ""
    functions: tuple[LicenseFunction, ...] = ()

    @property
    def function_names(self) -> tuple[str, ...]:
        """Names of :attr:`functions`, in server order."""
        return tuple(f.name for f in self.functions)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (for XCom)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "functions": [f.to_dict() for f in self.functions],
        }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``data`` (tolerates other casings of a property)."""
    for key in keys:
        if key in data:
            return data[key]
    return None


def parse_license_function(data: Any) -> LicenseFunction | None:
    """A :class:`LicenseFunction` from one JSON element; ``None`` for elements without a name.

    Forgiving: unknown properties are ignored and a bare string is taken as the function name.
    """
    if isinstance(data, str):
        return LicenseFunction(data) if data else None
    if not isinstance(data, Mapping):
        return None
    name = _text(_first(data, "name", "Name", "functionName"))
    if not name:
        return None
    return LicenseFunction(name, _text(_first(data, "displayName", "DisplayName", "display_name")))


def parse_license(data: Any) -> License | None:
    """A :class:`License` from one JSON element; ``None`` for elements without a name."""
    if not isinstance(data, Mapping):
        return None
    name = _text(_first(data, "name", "Name", "licenseName"))
    if not name:
        return None
    raw_functions = _first(data, "licenseFunctions", "LicenseFunctions", "functions")
    functions = _parse_function_list(raw_functions) if isinstance(raw_functions, list) else ()
    return License(name, _text(_first(data, "displayName", "DisplayName", "display_name")), functions)


def _parse_function_list(items: Iterable[Any]) -> tuple[LicenseFunction, ...]:
    parsed = (parse_license_function(item) for item in items)
    return tuple(f for f in parsed if f is not None)


def _json_array(response: HttpResponse, what: str) -> list[Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise SpotfireError(
            f"Spotfire answered {what} with a body that is not JSON ({exc}); is the connection "
            "pointing at a Spotfire Server?"
        ) from None
    if body is None:
        return []
    if not isinstance(body, list):
        raise SpotfireError(
            f"Spotfire answered {what} with a JSON {type(body).__name__}, expected an array; is the "
            "connection pointing at a Spotfire Server with the License management API v1?"
        )
    return body


def parse_licenses(response: HttpResponse) -> list[License]:
    """Parse a ``<License> array`` response."""
    parsed = (parse_license(item) for item in _json_array(response, "a license listing"))
    return [lic for lic in parsed if lic is not None]


def parse_license_functions(response: HttpResponse) -> list[LicenseFunction]:
    """Parse a ``<LicenseFunction> array`` response."""
    return list(_parse_function_list(_json_array(response, "a license function listing")))


def _no_content(response: HttpResponse) -> None:
    return None


# --------------------------------------------------------------------------------------------------
# Request builders
# --------------------------------------------------------------------------------------------------
def quote_segment(value: str, what: str) -> str:
    """Percent-encode one path segment (``/`` too); refuse empty, ``.`` and ``..`` values."""
    text = str(value).strip() if value is not None else ""
    if text in ("", ".", ".."):
        raise SpotfireConfigurationError(f"The {what} must be a non-empty name or id, got {value!r}.")
    if what.endswith(" id"):  # ids never hold '/', '?', '#', '%': refuse instead of a raw 404
        validate.url_segment(what.replace(" ", "_"), text, kind=what.removesuffix(" id"))
    return quote(text, safe="")


def _path(*segments: str) -> str:
    return "/".join((LICENSES_API, *segments))


def _heritage(including_heritage: bool) -> dict[str, str]:
    return {"includingHeritage": "true" if including_heritage else "false"}


def _read(
    path: str, parse: Callable[[HttpResponse], T], params: Mapping[str, str] | None = None
) -> ApiRequest[T]:
    return ApiRequest("GET", path, READ_SCOPES, parse, params=params, idempotent=True)


def _group_license_path(license_name: str, group_id: str) -> str:
    return _path(quote_segment(license_name, "license name"), "groups", quote_segment(group_id, "group id"))


def build_list_licenses() -> ApiRequest[list[License]]:
    """``GET /``: every license of the server with all its functions."""
    return _read(LICENSES_API, parse_licenses)


def build_get_user_licenses(user_id: str) -> ApiRequest[list[License]]:
    """``GET /users/{userId}``: licenses and functions enabled for a user."""
    return _read(_path("users", quote_segment(user_id, "user id")), parse_licenses)


def build_get_user_license_functions(license_name: str, user_id: str) -> ApiRequest[list[LicenseFunction]]:
    """``GET /{licenseName}/users/{userId}``: functions of one license enabled for a user."""
    path = _path(quote_segment(license_name, "license name"), "users", quote_segment(user_id, "user id"))
    return _read(path, parse_license_functions)


def build_get_group_licenses(group_id: str, including_heritage: bool = False) -> ApiRequest[list[License]]:
    """``GET /groups/{groupId}``: licenses set on a group (with ``including_heritage``, also inherited)."""
    path = _path("groups", quote_segment(group_id, "group id"))
    return _read(path, parse_licenses, _heritage(including_heritage))


def build_get_group_license_functions(
    license_name: str, group_id: str, including_heritage: bool = False
) -> ApiRequest[list[LicenseFunction]]:
    """``GET /{licenseName}/groups/{groupId}``: functions of one license enabled for a group."""
    path = _group_license_path(license_name, group_id)
    return _read(path, parse_license_functions, _heritage(including_heritage))


def build_get_license_functions(license_name: str) -> ApiRequest[list[LicenseFunction]]:
    """``GET /{licenseName}/functions``: every function of a license."""
    return _read(_path(quote_segment(license_name, "license name"), "functions"), parse_license_functions)


def build_set_group_license(
    license_name: str, group_id: str, functions: Iterable[str] | None = None
) -> ApiRequest[None]:
    """``PUT /{licenseName}/groups/{groupId}``: set a license on a group; no functions = all functions.

    The body is a JSON array of function names (see the module docstring).
    """
    names = [str(f) for f in (functions or [])]
    if any(not n.strip() for n in names):
        raise SpotfireConfigurationError(f"License function names must be non-empty strings, got {names!r}.")
    path = _group_license_path(license_name, group_id)
    return ApiRequest("PUT", path, WRITE_SCOPES, _no_content, json=names, idempotent=True)


def build_remove_group_license(license_name: str, group_id: str) -> ApiRequest[None]:
    """``DELETE /{licenseName}/groups/{groupId}``: remove a license set explicitly on a group."""
    path = _group_license_path(license_name, group_id)
    return ApiRequest("DELETE", path, WRITE_SCOPES, _no_content, idempotent=True)


# --------------------------------------------------------------------------------------------------
# Errors: say which argument the server rejected and how to fix it
# --------------------------------------------------------------------------------------------------
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _id_hint(kind: str, value: str | None) -> str:
    if value is None or _GUID.match(str(value).strip()):
        return ""
    return (
        f" Spotfire {kind} ids are GUIDs (e.g. 5e239d92-8888-4ed1-94e5-bc93c0d5e05a); a {kind} name "
        "is not accepted."
    )


def rewrap(exc: SpotfireError, message: str) -> SpotfireError:
    """A copy of ``exc`` (same class and HTTP details) with a clearer ``message``."""
    if isinstance(exc, SpotfireApiError):
        return exc.with_message(message)
    return type(exc)(message)


def server_said(exc: SpotfireApiError) -> str:
    """``Spotfire answered 403 not_authorized to PUT /path: description`` (without generic advice)."""
    text = f"Spotfire answered {exc.status_code}" + (f" {exc.code}" if exc.code else "")
    if exc.method and exc.path:
        text += f" to {exc.method} {exc.path}"
    return text + (f": {exc.description.rstrip('.')}" if exc.description else "")


def _is_token_endpoint_error(exc: SpotfireApiError) -> bool:
    return bool(exc.path and exc.path.rstrip("/").endswith("/oauth2/token")) or exc.code in (
        "invalid_scope",
        "insufficient_scope",
        "unauthorized_client",
    )


def lacks_write_scope_message(client_id: str | None, exc: SpotfireApiError) -> str:
    """Why a license change was refused because the API client may not use ``api.licenses.write``."""
    who = f"API client {client_id!r}" if client_id else "The API client"
    return (
        f"{who} lacks the scope {S.LICENSES_WRITE}, which changing license assignments needs. Register "
        f"it for that scope (register-api-client ... -S{S.LICENSES_WRITE}) or use a connection whose API "
        f"client has it. ({server_said(exc)})"
    )


def not_admin_message(client_id: str | None, exc: SpotfireApiError) -> str:
    """Why a license change was refused because the API client is not an administrator."""
    who = f"API client {client_id!r}" if client_id else "The API client"
    return (
        f"{who} is not a Spotfire administrator: changing license assignments requires the API "
        "client's user to be a member of the Administrator group (it has the scope "
        f"{S.LICENSES_WRITE}). Add it to the Administrator group (Administration Manager, or "
        "`config add-member --groupname=Administrator --member-username=<the client's user>`) or use "
        f"an administrator's API client. ({server_said(exc)})"
    )


def _bad_request_hint(
    write: bool, license_name: str | None, group_id: str | None, user_id: str | None
) -> str:
    """Which path argument a 400 ("invalid ID or not found") is about, as precisely as the endpoint allows."""
    if license_name is None and group_id is not None:
        return f"Spotfire group {group_id!r} does not exist or is not a valid group id." + _id_hint(
            "group", group_id
        )
    if license_name is None and user_id is not None:
        return f"Spotfire user {user_id!r} does not exist or is not a valid user id." + _id_hint(
            "user", user_id
        )
    if license_name is not None and group_id is None and user_id is None:
        return f"License {license_name!r} does not exist on this server; list_licenses() names them all."
    kind = "group" if group_id is not None else "user"
    target = f"group {group_id!r}" if group_id is not None else f"user {user_id!r}"
    what = "the license name, a function name or the" if write else "the license name or the"
    return (
        f"Spotfire rejected license {license_name!r} for {target}: {what} {kind} id is invalid or "
        "unknown. Check the license against list_licenses() and the id in the Administration Manager."
        f"{_id_hint(kind, group_id or user_id)}"
    )


def needs_scope_check(exc: SpotfireError, *, write: bool) -> bool:
    """Whether explaining ``exc`` needs to know if the write token carries ``api.licenses.write``."""
    return write and isinstance(exc, SpotfirePermissionError) and not _is_token_endpoint_error(exc)


def explain_license_error(
    exc: SpotfireError,
    *,
    write: bool = False,
    client_id: str | None = None,
    license_name: str | None = None,
    group_id: str | None = None,
    user_id: str | None = None,
    write_scope_granted: bool | None = None,
) -> SpotfireError | None:
    """The clearer error for a 400 or 403 of the license API (``None``: keep ``exc`` as it is).

    The spec answers 400 for "invalid ID or not found", so a 400 means one of the path arguments
    is unknown. A refused write (403) either lacks ``api.licenses.write`` or is not an
    administrator; ``write_scope_granted`` (whether the token carries the scope) tells them apart.
    """
    if isinstance(exc, SpotfireBadRequestError):  # a 404 means the API itself is missing: left as is
        hint = _bad_request_hint(write, license_name, group_id, user_id)
        return rewrap(exc, f"{hint} ({server_said(exc)})")
    if not write or not isinstance(exc, SpotfirePermissionError):
        return None
    if _is_token_endpoint_error(exc):
        return rewrap(exc, lacks_write_scope_message(client_id, exc))
    # The API answered 403 although a token was issued: if that token carries the write
    # scope, the only other cause the spec names is "not an administrator".
    granted = write_scope_granted
    if granted is None:
        description = (exc.description or "").lower()
        granted = "administrator" in description or "scope" not in description
    if granted:
        return rewrap(exc, not_admin_message(client_id, exc))
    return rewrap(exc, lacks_write_scope_message(client_id, exc))


__all__ = [
    "READ_SCOPES",
    "WRITE_SCOPES",
    "License",
    "LicenseFunction",
    "build_get_group_license_functions",
    "build_get_group_licenses",
    "build_get_license_functions",
    "build_get_user_license_functions",
    "build_get_user_licenses",
    "build_list_licenses",
    "build_remove_group_license",
    "build_set_group_license",
    "explain_license_error",
    "needs_scope_check",
    "parse_license",
    "parse_license_function",
    "parse_license_functions",
    "parse_licenses",
    "rewrap",
]
