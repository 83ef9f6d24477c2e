"""License management methods of both hooks, each written once as an operation flow.

:class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireApiMethods` makes them hook methods.

400 answers are re-raised naming the unknown license, group or user; a refused write says
whether the API client lacks ``api.licenses.write`` or is not an administrator (the advice is
:func:`~airflow_provider_spotfire.api.licenses.explain_license_error`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.api.licenses import (
    WRITE_SCOPES,
    License,
    LicenseFunction,
    build_get_group_license_functions,
    build_get_group_licenses,
    build_get_license_functions,
    build_get_user_license_functions,
    build_get_user_licenses,
    build_list_licenses,
    build_remove_group_license,
    build_set_group_license,
    explain_license_error,
    needs_scope_check,
)
from airflow_provider_spotfire.exceptions import (
    SpotfireBadRequestError,
    SpotfireError,
    SpotfirePermissionError,
)
from airflow_provider_spotfire.hooks.flow import Operation, ReadConfig, TokenFor

T = TypeVar("T")


def _read(
    request: ApiRequest[T],
    *,
    license_name: str | None = None,
    group_id: str | None = None,
    user_id: str | None = None,
) -> Operation[T]:
    """Send a read; a 400 is re-raised naming the unknown license, group or user."""
    try:
        result: T = yield request
    except SpotfireBadRequestError as exc:
        clearer = explain_license_error(exc, license_name=license_name, group_id=group_id, user_id=user_id)
        raise clearer or exc from exc
    return result


def _write_scope_granted() -> Operation[bool | None]:
    """Whether the write token carries ``api.licenses.write`` (``None``: unknown)."""
    try:
        token = yield TokenFor(WRITE_SCOPES)
    except SpotfireError:
        return None
    return S.LICENSES_WRITE in token.scopes or "*" in token.scopes


def _write(request: ApiRequest[Any], license_name: str, group_id: str) -> Operation[None]:
    """Send a license write, turning refusals into errors that name what to fix."""
    try:
        yield request
    except (SpotfireBadRequestError, SpotfirePermissionError) as exc:
        config = yield ReadConfig()
        granted = (yield from _write_scope_granted()) if needs_scope_check(exc, write=True) else None
        clearer = explain_license_error(
            exc,
            write=True,
            client_id=config.client_id,
            license_name=license_name,
            group_id=group_id,
            write_scope_granted=granted,
        )
        if clearer is None:
            raise
        raise clearer from exc


def list_licenses() -> Operation[list[License]]:
    """Every license of the server with all of its functions (the catalogue)."""
    licenses: list[License] = yield build_list_licenses()
    return licenses


def get_user_licenses(user_id: str) -> Operation[list[License]]:
    """Licenses and functions enabled for a user (through all of its groups)."""
    return (yield from _read(build_get_user_licenses(user_id), user_id=user_id))


def get_user_license_functions(license_name: str, user_id: str) -> Operation[list[LicenseFunction]]:
    """Functions of ``license_name`` enabled for a user."""
    request = build_get_user_license_functions(license_name, user_id)
    return (yield from _read(request, license_name=license_name, user_id=user_id))


def get_group_licenses(group_id: str, including_heritage: bool = False) -> Operation[list[License]]:
    """Licenses set explicitly on a group, or with ``including_heritage`` also through membership."""
    return (yield from _read(build_get_group_licenses(group_id, including_heritage), group_id=group_id))


def get_group_license_functions(
    license_name: str, group_id: str, including_heritage: bool = False
) -> Operation[list[LicenseFunction]]:
    """Functions of ``license_name`` enabled for a group (explicitly, or also inherited)."""
    request = build_get_group_license_functions(license_name, group_id, including_heritage)
    return (yield from _read(request, license_name=license_name, group_id=group_id))


def get_license_functions(license_name: str) -> Operation[list[LicenseFunction]]:
    """Every function of a license."""
    return (yield from _read(build_get_license_functions(license_name), license_name=license_name))


def set_group_license(
    license_name: str, group_id: str, functions: Iterable[str] | None = None
) -> Operation[None]:
    """Set a license on a group with the given functions (``None`` or empty: all functions).

    Needs ``api.licenses.write`` and an API client in the Administrator group. Idempotent.
    """
    yield from _write(build_set_group_license(license_name, group_id, functions), license_name, group_id)


def remove_group_license(license_name: str, group_id: str) -> Operation[None]:
    """Remove a license set explicitly on a group (it may still be inherited from a parent group).

    Needs ``api.licenses.write`` and an API client in the Administrator group. Idempotent.
    """
    yield from _write(build_remove_group_license(license_name, group_id), license_name, group_id)


__all__ = [
    "get_group_license_functions",
    "get_group_licenses",
    "get_license_functions",
    "get_user_license_functions",
    "get_user_licenses",
    "list_licenses",
    "remove_group_license",
    "set_group_license",
]
