"""License management REST API v1 router: ``/spotfire/api/rest/licenses/v1``.

Reads accept ``api.licenses.read`` or ``api.licenses.write``; writes need ``api.licenses.write`` and a caller
in the Administrator group. Heritage: a group inherits the licenses of the groups it is (transitively) a
member of; a user gets the union over all its groups (direct, transitive and Everyone).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_spotfire.emulator.constants import SCOPE_LICENSES_READ, SCOPE_LICENSES_WRITE
from airflow_provider_spotfire.emulator.errors import ApiError
from airflow_provider_spotfire.emulator.library import parse_bool
from airflow_provider_spotfire.emulator.oauth import Caller, get_state, require_scope
from airflow_provider_spotfire.emulator.state import EmulatorState

API_PATH = "/spotfire/api/rest/licenses/v1"

router = APIRouter(prefix=API_PATH, tags=["licenses"])
ReadCaller = Annotated[Caller, Depends(require_scope(SCOPE_LICENSES_READ, SCOPE_LICENSES_WRITE))]
WriteCaller = Annotated[Caller, Depends(require_scope(SCOPE_LICENSES_WRITE))]


def _function_json(state: EmulatorState, license_name: str, fn: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": fn, "displayName": state.licensing.licenses[license_name]["functions"][fn]}
    if state.config.extra_response_fields:
        d["description"] = f"{d['displayName']} ({license_name})"
    return d


def license_json(state: EmulatorState, name: str, functions: list[str] | None = None) -> dict[str, Any]:
    """A License object; ``functions`` None means all functions of the license."""
    lic = state.licensing.licenses[name]
    fns = list(lic["functions"]) if functions is None else functions
    d: dict[str, Any] = {
        "name": name,
        "displayName": lic["displayName"],
        "licenseFunctions": [_function_json(state, name, f) for f in fns],
    }
    if state.config.extra_response_fields:
        d["description"] = f"{lic['displayName']} license"
    return d


def _license(state: EmulatorState, name: str) -> str:
    if name not in state.licensing.licenses:
        raise ApiError("invalid_request", f"Unknown license: {name}")
    return name


def _group(state: EmulatorState, group_id: str) -> str:
    group = state.principals.find_group(group_id)
    if group is None:
        raise ApiError("invalid_request", f"Unknown group ID: {group_id}")
    return group.group_id


def _user(state: EmulatorState, user_id: str) -> str:
    user = state.principals.find_user(user_id)
    if user is None:
        raise ApiError("invalid_request", f"Unknown user ID: {user_id}")
    return user.user_id


def _heritage(request: Request) -> bool:
    return parse_bool(request.query_params.get("includingHeritage"), "includingHeritage")


def _require_admin(state: EmulatorState, caller: Caller) -> None:
    if not state.principals.is_admin(caller.user_id):
        raise ApiError(
            "not_authorized",
            "The caller is not an administrator: it is not a member of the Administrator group "
            "(changing license assignments needs the Administrator group and the api.licenses.write scope)",
        )


@router.get("")
@router.get("/", include_in_schema=False)
async def list_licenses(request: Request, caller: ReadCaller) -> JSONResponse:
    """All licenses and license functions that exist in the system."""
    state = get_state(request)
    with state.lock:
        return JSONResponse([license_json(state, name) for name in state.licensing.licenses])


@router.get("/users/{user_id}")
async def user_licenses(user_id: str, request: Request, caller: ReadCaller) -> JSONResponse:
    """Licenses and functions enabled for a user (through all its groups)."""
    state = get_state(request)
    with state.lock:
        uid = _user(state, user_id)
        merged = state.licensing.user_assignments(uid)
        return JSONResponse([license_json(state, lic, fns) for lic, fns in merged.items()])


@router.get("/groups/{group_id}")
async def group_licenses(group_id: str, request: Request, caller: ReadCaller) -> JSONResponse:
    """Licenses enabled for a group (``includingHeritage`` adds the licenses of its parent groups)."""
    state = get_state(request)
    heritage = _heritage(request)
    with state.lock:
        gid = _group(state, group_id)
        merged = state.licensing.group_assignments(gid, heritage)
        return JSONResponse([license_json(state, lic, fns) for lic, fns in merged.items()])


@router.get("/{license_name:path}/functions")
async def license_functions(license_name: str, request: Request, caller: ReadCaller) -> JSONResponse:
    """All license functions of a license."""
    state = get_state(request)
    with state.lock:
        name = _license(state, license_name)
        return JSONResponse(
            [_function_json(state, name, f) for f in state.licensing.licenses[name]["functions"]]
        )


@router.get("/{license_name:path}/groups/{group_id}")
async def group_license_functions(
    license_name: str, group_id: str, request: Request, caller: ReadCaller
) -> JSONResponse:
    """License functions of one license enabled for a group (``[]`` when the license is not set)."""
    state = get_state(request)
    heritage = _heritage(request)
    with state.lock:
        name = _license(state, license_name)
        gid = _group(state, group_id)
        fns = state.licensing.group_assignments(gid, heritage).get(name, [])
        return JSONResponse([_function_json(state, name, f) for f in fns])


@router.get("/{license_name:path}/users/{user_id}")
async def user_license_functions(
    license_name: str, user_id: str, request: Request, caller: ReadCaller
) -> JSONResponse:
    """License functions of one license enabled for a user."""
    state = get_state(request)
    with state.lock:
        name = _license(state, license_name)
        uid = _user(state, user_id)
        fns = state.licensing.user_assignments(uid).get(name, [])
        return JSONResponse([_function_json(state, name, f) for f in fns])


def parse_functions(body: bytes) -> list[str] | None:
    """PUT body → function names; ``None`` means all functions.

    Accepted: empty body, ``null``, ``[]``, an array of names, an array of ``{"name": ...}`` objects, or a
    License-shaped object ``{"licenseFunctions": [...]}``.
    """
    if not body.strip():
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("invalid_request", f"The request body is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "licenseFunctions" in data:
        data = data["licenseFunctions"]
    if data is None:
        return None
    if not isinstance(data, list):
        raise ApiError("invalid_request", "The body must be a JSON array of license function names")
    names: list[str] = []
    for entry in data:
        if isinstance(entry, dict):
            entry = entry.get("name")
        if not isinstance(entry, str) or not entry:
            raise ApiError("invalid_request", "Each license function must be a name or an object with a name")
        if entry not in names:
            names.append(entry)
    return names or None


@router.put("/{license_name:path}/groups/{group_id}", status_code=204)
async def set_group_license(
    license_name: str, group_id: str, request: Request, caller: WriteCaller
) -> Response:
    """Set a license (and its functions; empty/null = all) for a group. Administrators only."""
    state = get_state(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    with state.lock:
        _require_admin(state, caller)
        name = _license(state, license_name)
        gid = _group(state, group_id)
        if ctype and body.strip() and ctype != "application/json" and not ctype.endswith("+json"):
            raise ApiError(
                "unsupported_mediatype", f"Unsupported content type {ctype}; expected application/json"
            )
        requested = parse_functions(body)
        catalog = state.licensing.licenses[name]["functions"]
        if requested is None:
            functions = list(catalog)
        else:
            unknown = [f for f in requested if f not in catalog]
            if unknown:
                raise ApiError(
                    "invalid_request", f"Unknown license function(s) for {name}: {', '.join(unknown)}"
                )
            functions = [f for f in catalog if f in requested]
        state.licensing.assignments.setdefault(gid, {})[name] = functions
    return Response(status_code=204)


@router.delete("/{license_name:path}/groups/{group_id}", status_code=204)
async def remove_group_license(
    license_name: str, group_id: str, request: Request, caller: WriteCaller
) -> Response:
    """Remove a license set explicitly on a group (no-op when it is not set). Administrators only."""
    state = get_state(request)
    with state.lock:
        _require_admin(state, caller)
        name = _license(state, license_name)
        gid = _group(state, group_id)
        state.licensing.assignments.get(gid, {}).pop(name, None)
    return Response(status_code=204)
