"""License management REST API v1: requests, response models and the hook methods built on them.

Every endpoint of ``/spotfire/api/rest/licenses/v1`` is described once, as an :class:`ApiRequest`
builder; :class:`LicenseHookMixin` (sync) and :class:`LicenseAsyncHookMixin` (async, reads only)
just send them.

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
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
from airflow_provider_spotfire.hooks.base import SpotfireAsyncHookBase, SpotfireHookBase

LICENSES_API = "rest/licenses/v1"
READ_SCOPES: tuple[str, ...] = (S.LICENSES_READ, S.LICENSES_WRITE)
WRITE_SCOPES: tuple[str, ...] = (S.LICENSES_WRITE,)


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

    In the catalogue (:meth:`LicenseHookMixin.list_licenses`) ``functions`` lists every function
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


def list_licenses_request() -> ApiRequest[list[License]]:
    """``GET /``: every license of the server with all its functions."""
    return ApiRequest("GET", LICENSES_API, READ_SCOPES, parse_licenses, idempotent=True)


def user_licenses_request(user_id: str) -> ApiRequest[list[License]]:
    """``GET /users/{userId}``: licenses and functions enabled for a user."""
    path = _path("users", quote_segment(user_id, "user id"))
    return ApiRequest("GET", path, READ_SCOPES, parse_licenses, idempotent=True)


def user_license_functions_request(license_name: str, user_id: str) -> ApiRequest[list[LicenseFunction]]:
    """``GET /{licenseName}/users/{userId}``: functions of one license enabled for a user."""
    path = _path(quote_segment(license_name, "license name"), "users", quote_segment(user_id, "user id"))
    return ApiRequest("GET", path, READ_SCOPES, parse_license_functions, idempotent=True)


def group_licenses_request(group_id: str, including_heritage: bool = False) -> ApiRequest[list[License]]:
    """``GET /groups/{groupId}``: licenses set on a group (with ``including_heritage``, also inherited)."""
    path = _path("groups", quote_segment(group_id, "group id"))
    return ApiRequest(
        "GET", path, READ_SCOPES, parse_licenses, params=_heritage(including_heritage), idempotent=True
    )


def group_license_functions_request(
    license_name: str, group_id: str, including_heritage: bool = False
) -> ApiRequest[list[LicenseFunction]]:
    """``GET /{licenseName}/groups/{groupId}``: functions of one license enabled for a group."""
    path = _path(quote_segment(license_name, "license name"), "groups", quote_segment(group_id, "group id"))
    return ApiRequest(
        "GET",
        path,
        READ_SCOPES,
        parse_license_functions,
        params=_heritage(including_heritage),
        idempotent=True,
    )


def license_functions_request(license_name: str) -> ApiRequest[list[LicenseFunction]]:
    """``GET /{licenseName}/functions``: every function of a license."""
    path = _path(quote_segment(license_name, "license name"), "functions")
    return ApiRequest("GET", path, READ_SCOPES, parse_license_functions, idempotent=True)


def set_group_license_request(
    license_name: str, group_id: str, functions: Iterable[str] | None = None
) -> ApiRequest[None]:
    """``PUT /{licenseName}/groups/{groupId}``: set a license on a group; no functions = all functions.

    The body is a JSON array of function names (see the module docstring).
    """
    names = [str(f) for f in (functions or [])]
    if any(not n.strip() for n in names):
        raise SpotfireConfigurationError(f"License function names must be non-empty strings, got {names!r}.")
    path = _path(quote_segment(license_name, "license name"), "groups", quote_segment(group_id, "group id"))
    return ApiRequest(
        "PUT",
        path,
        WRITE_SCOPES,
        _no_content,
        json=names,
        idempotent=True,
    )


def remove_group_license_request(license_name: str, group_id: str) -> ApiRequest[None]:
    """``DELETE /{licenseName}/groups/{groupId}``: remove a license set explicitly on a group."""
    path = _path(quote_segment(license_name, "license name"), "groups", quote_segment(group_id, "group id"))
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


@contextmanager
def explain_errors(
    *,
    write: bool = False,
    client_id: str | None = None,
    license_name: str | None = None,
    group_id: str | None = None,
    user_id: str | None = None,
    write_scope_granted: Callable[[], bool | None] | None = None,
) -> Iterator[None]:
    """Re-raise 400 and 403 answers of the license API naming the rejected argument and the fix.

    The spec answers 400 for "invalid ID or not found", so a 400 here means one of the path
    arguments is unknown; which one is said as precisely as the endpoint allows.
    """
    try:
        yield
    except SpotfireBadRequestError as exc:  # a 404 means the API itself is missing: left as is
        if license_name is None and group_id is not None:
            hint = f"Spotfire group {group_id!r} does not exist or is not a valid group id."
            hint += _id_hint("group", group_id)
        elif license_name is None and user_id is not None:
            hint = f"Spotfire user {user_id!r} does not exist or is not a valid user id."
            hint += _id_hint("user", user_id)
        elif license_name is not None and group_id is None and user_id is None:
            hint = f"License {license_name!r} does not exist on this server; list_licenses() names them all."
        else:
            target = f"group {group_id!r}" if group_id is not None else f"user {user_id!r}"
            what = "the license name, a function name or the" if write else "the license name or the"
            hint = (
                f"Spotfire rejected license {license_name!r} for {target}: {what} "
                f"{'group' if group_id is not None else 'user'} id is invalid or unknown. Check the "
                "license against list_licenses() and the id in the Administration Manager."
                f"{_id_hint('group' if group_id is not None else 'user', group_id or user_id)}"
            )
        raise rewrap(exc, f"{hint} ({server_said(exc)})") from exc
    except SpotfirePermissionError as exc:
        if not write:
            raise
        if _is_token_endpoint_error(exc):
            raise rewrap(exc, lacks_write_scope_message(client_id, exc)) from exc
        # The API answered 403 although a token was issued: if that token carries the write
        # scope, the only other cause the spec names is "not an administrator".
        granted = write_scope_granted() if write_scope_granted is not None else None
        if granted is None:
            description = (exc.description or "").lower()
            granted = "administrator" in description or "scope" not in description
        if granted:
            raise rewrap(exc, not_admin_message(client_id, exc)) from exc
        raise rewrap(exc, lacks_write_scope_message(client_id, exc)) from exc


# --------------------------------------------------------------------------------------------------
# Hook mixins
# --------------------------------------------------------------------------------------------------
class LicenseHookMixin(SpotfireHookBase):
    """License management REST API v1 methods of :class:`~.hooks.spotfire.SpotfireHook`.

    400 answers are re-raised naming the unknown license, group or user; a refused write says
    whether the API client lacks ``api.licenses.write`` or is not an administrator.
    """

    def _write_scope_granted(self) -> bool | None:
        """Whether the cached write token carries ``api.licenses.write`` (``None``: unknown)."""
        try:
            granted = self.get_token(WRITE_SCOPES).scopes
        except SpotfireError:
            return None
        return S.LICENSES_WRITE in granted or "*" in granted

    def list_licenses(self) -> list[License]:
        """Every license of the server with all of its functions (the catalogue)."""
        return self.call(list_licenses_request())

    def get_user_licenses(self, user_id: str) -> list[License]:
        """Licenses and functions enabled for a user (through all of its groups)."""
        with explain_errors(user_id=user_id):
            return self.call(user_licenses_request(user_id))

    def get_user_license_functions(self, license_name: str, user_id: str) -> list[LicenseFunction]:
        """Functions of ``license_name`` enabled for a user."""
        with explain_errors(license_name=license_name, user_id=user_id):
            return self.call(user_license_functions_request(license_name, user_id))

    def get_group_licenses(self, group_id: str, including_heritage: bool = False) -> list[License]:
        """Licenses set explicitly on a group, or with ``including_heritage`` also through membership."""
        with explain_errors(group_id=group_id):
            return self.call(group_licenses_request(group_id, including_heritage))

    def get_group_license_functions(
        self, license_name: str, group_id: str, including_heritage: bool = False
    ) -> list[LicenseFunction]:
        """Functions of ``license_name`` enabled for a group (explicitly, or also inherited)."""
        with explain_errors(license_name=license_name, group_id=group_id):
            return self.call(group_license_functions_request(license_name, group_id, including_heritage))

    def get_license_functions(self, license_name: str) -> list[LicenseFunction]:
        """Every function of a license."""
        with explain_errors(license_name=license_name):
            return self.call(license_functions_request(license_name))

    def set_group_license(
        self, license_name: str, group_id: str, functions: Iterable[str] | None = None
    ) -> None:
        """Set a license on a group with the given functions (``None`` or empty: all functions).

        Needs ``api.licenses.write`` and an API client in the Administrator group. Idempotent.
        """
        self._write(set_group_license_request(license_name, group_id, functions), license_name, group_id)

    def remove_group_license(self, license_name: str, group_id: str) -> None:
        """Remove a license set explicitly on a group (it may still be inherited from a parent group).

        Needs ``api.licenses.write`` and an API client in the Administrator group. Idempotent.
        """
        self._write(remove_group_license_request(license_name, group_id), license_name, group_id)

    def _write(self, request: ApiRequest[Any], license_name: str, group_id: str) -> None:
        """Send a license write, turning refusals into errors that name what to fix."""
        with explain_errors(
            write=True,
            client_id=self.config.client_id,
            license_name=license_name,
            group_id=group_id,
            write_scope_granted=self._write_scope_granted,
        ):
            self.call(request)


class LicenseAsyncHookMixin(SpotfireAsyncHookBase):
    """License management REST API v1 reads of :class:`~.hooks.spotfire.SpotfireAsyncHook`.

    No trigger changes licenses, so only the reads are offered; they share the sync builders.
    """

    async def list_licenses(self) -> list[License]:
        """Async twin of :meth:`LicenseHookMixin.list_licenses`."""
        return await self.call(list_licenses_request())

    async def get_user_licenses(self, user_id: str) -> list[License]:
        """Async twin of :meth:`LicenseHookMixin.get_user_licenses`."""
        with explain_errors(user_id=user_id):
            return await self.call(user_licenses_request(user_id))

    async def get_user_license_functions(self, license_name: str, user_id: str) -> list[LicenseFunction]:
        """Async twin of :meth:`LicenseHookMixin.get_user_license_functions`."""
        with explain_errors(license_name=license_name, user_id=user_id):
            return await self.call(user_license_functions_request(license_name, user_id))

    async def get_group_licenses(self, group_id: str, including_heritage: bool = False) -> list[License]:
        """Async twin of :meth:`LicenseHookMixin.get_group_licenses`."""
        with explain_errors(group_id=group_id):
            return await self.call(group_licenses_request(group_id, including_heritage))

    async def get_group_license_functions(
        self, license_name: str, group_id: str, including_heritage: bool = False
    ) -> list[LicenseFunction]:
        """Async twin of :meth:`LicenseHookMixin.get_group_license_functions`."""
        with explain_errors(license_name=license_name, group_id=group_id):
            return await self.call(
                group_license_functions_request(license_name, group_id, including_heritage)
            )

    async def get_license_functions(self, license_name: str) -> list[LicenseFunction]:
        """Async twin of :meth:`LicenseHookMixin.get_license_functions`."""
        with explain_errors(license_name=license_name):
            return await self.call(license_functions_request(license_name))


__all__ = [
    "License",
    "LicenseAsyncHookMixin",
    "LicenseFunction",
    "LicenseHookMixin",
    "explain_errors",
    "group_license_functions_request",
    "group_licenses_request",
    "license_functions_request",
    "list_licenses_request",
    "parse_license",
    "parse_license_function",
    "parse_license_functions",
    "parse_licenses",
    "remove_group_license_request",
    "set_group_license_request",
    "user_license_functions_request",
    "user_licenses_request",
]
