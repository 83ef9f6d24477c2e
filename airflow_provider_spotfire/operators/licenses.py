"""Operators that manage Spotfire licenses of groups: set one, remove one, or sync a whole set.

The operators are thin: the work (validate, plan, apply, verify) is done by the flows of
:mod:`airflow_provider_spotfire.license_sync`, which the hook runs.

Every operator validates license and function names against the server's catalogue and checks
that the group exists *before* it writes anything, so a typo never leaves half a change behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire import license_sync
from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.license_sync import (
    LicenseChange,
    LicenseSpec,
    LicenseSyncPlan,
    normalize_functions,
    normalize_license_spec,
    plan_license_sync,
    validate_license_spec,
)
from airflow_provider_spotfire.operators.base import SpotfireHookMixin

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


# --------------------------------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------------------------------
class _GroupLicenseOperator(SpotfireHookMixin, BaseOperator):
    """What the group license operators share: the group (its id checked before any request) and the connection."""

    ui_color = "#c9e7f5"

    def __init__(self, *, group_id: str, spotfire_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group_id = group_id
        self.spotfire_conn_id = spotfire_conn_id


class SpotfireSetGroupLicenseOperator(_GroupLicenseOperator):
    """Set a license, with some or all of its functions, on a Spotfire group; verified by reading it back.

    :param group_id: the group's id (a GUID). Templated.
    :param license_name: e.g. ``Spotfire.Dxp.WebPlayer``. Templated.
    :param license_functions: function names to enable; ``None`` or empty enables all. Templated.
    :param spotfire_conn_id: the ``spotfire`` connection (API client with ``api.licenses.write``
        that is a member of the Administrator group).

    Returns (XCom) ``{"group_id", "license", "functions", "changed", "functions_before"}``.
    """

    template_fields: Sequence[str] = ("group_id", "license_name", "license_functions")

    def __init__(
        self, *, license_name: str, license_functions: Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.license_name = license_name
        self.license_functions = license_functions

    def execute(self, context: Context) -> dict[str, Any]:
        validate.url_segment("group_id", self.group_id)
        normalize_functions(self.license_functions)  # the shape, before any request
        return self.hook.run(
            license_sync.set_group_license(self.group_id, self.license_name, self.license_functions, self.log)
        )


class SpotfireRemoveGroupLicenseOperator(_GroupLicenseOperator):
    """Remove a license set explicitly on a Spotfire group (a no-op, logged, if it is not set).

    The group may keep the license through membership in other groups; the task logs it and
    returns the inherited functions.

    :param group_id: the group's id (a GUID). Templated.
    :param license_name: the license to remove. Templated.
    :param spotfire_conn_id: the ``spotfire`` connection.

    Returns (XCom) ``{"group_id", "license", "removed", "functions_before", "inherited_functions"}``.
    """

    template_fields: Sequence[str] = ("group_id", "license_name")

    def __init__(self, *, license_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.license_name = license_name

    def execute(self, context: Context) -> dict[str, Any]:
        validate.url_segment("group_id", self.group_id)
        return self.hook.run(license_sync.remove_group_license(self.group_id, self.license_name, self.log))


class SpotfireSyncGroupLicensesOperator(_GroupLicenseOperator):
    """Make a group's explicitly set licenses match a declared set, with the fewest writes.

    :param group_id: the group's id (a GUID). Templated.
    :param licenses: license name -> list of function names, or ``None`` (or ``[]``) for all
        functions. Templated.
    :param remove_unlisted: also remove licenses set on the group but not listed (inherited
        licenses are never touched).
    :param dry_run: only compute and return the changes.
    :param allow_remove_all: with ``remove_unlisted``, allow an empty ``licenses`` (removes every
        explicit license of the group); without it an empty set is refused before any request.
    :param spotfire_conn_id: the ``spotfire`` connection.

    Names are validated before anything is written. Returns (XCom) the diff:
    ``{"group_id", "dry_run", "applied", "changes": [{"action", "license", "functions_before",
    "functions_after", "functions_added", "functions_removed"}], "unchanged", "unlisted_kept"}``.
    A second run finds nothing to change.
    """

    template_fields: Sequence[str] = ("group_id", "licenses")

    def __init__(
        self,
        *,
        licenses: LicenseSpec,
        remove_unlisted: bool = False,
        dry_run: bool = False,
        allow_remove_all: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.licenses = licenses
        self.remove_unlisted = remove_unlisted
        self.allow_remove_all = allow_remove_all
        # not ``self.dry_run``: that is BaseOperator.dry_run(), a method
        self.is_dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        validate.url_segment("group_id", self.group_id)
        validate.license_sync_scope(
            self.licenses,
            remove_unlisted=self.remove_unlisted,
            allow_remove_all=self.allow_remove_all,
            group_id=self.group_id,
        )
        return self.hook.sync_group_licenses(
            self.group_id,
            self.licenses,
            remove_unlisted=self.remove_unlisted,
            dry_run=self.is_dry_run,
            logger=self.log,
        )


__all__ = [
    "LicenseChange",
    "LicenseSyncPlan",
    "SpotfireRemoveGroupLicenseOperator",
    "SpotfireSetGroupLicenseOperator",
    "SpotfireSyncGroupLicensesOperator",
    "normalize_functions",
    "normalize_license_spec",
    "plan_license_sync",
    "validate_license_spec",
]
