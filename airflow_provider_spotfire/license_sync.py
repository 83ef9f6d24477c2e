"""License sync: plan, apply and verify a group's explicit licenses, written once for both hooks.

Pure helpers (no I/O: :func:`normalize_license_spec`, :func:`validate_license_spec`,
:func:`plan_license_sync`) and operation flows built on the hooks' license methods
(:func:`set_group_license`, :func:`remove_group_license`, :func:`sync_group_licenses`), which
``hook.run(...)`` runs; ``sync_group_licenses`` is also a method of both hooks.

Every flow validates license and function names against the server's catalogue and checks that
the group exists *before* it writes anything, so a typo never leaves half a change behind.
"""

from __future__ import annotations

import ast
import difflib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire.api.licenses import License, rewrap
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireError
from airflow_provider_spotfire.hooks import licenses
from airflow_provider_spotfire.hooks.flow import Operation

log = logging.getLogger(__name__)


Logger = Any
"""A :class:`logging.Logger` or an operator's ``self.log`` (structlog in Airflow 3)."""

Functions = tuple[str, ...]
"""Function names of one license, in catalogue order."""
LicenseSpec = Mapping[str, Sequence[str] | None]
"""License name -> function names (``None`` or empty: all functions of the license)."""


# --------------------------------------------------------------------------------------------------
# Pure helpers (no I/O)
# --------------------------------------------------------------------------------------------------
def _literal(value: str, what: str) -> Any:
    """A JSON or Python literal from a rendered template string."""
    for loader in (json.loads, ast.literal_eval):
        try:
            return loader(value)
        except (ValueError, SyntaxError, TypeError):
            continue
    raise SpotfireConfigurationError(
        f"{what} is the string {value!r}, which is neither JSON nor a Python literal. Pass a "
        "list/dict, or render templates as native objects (DAG(render_template_as_native_obj=True))."
    )


def normalize_functions(value: Any, what: str = "license_functions") -> Functions | None:
    """``None``/empty -> ``None`` (all functions); a list of names -> de-duplicated tuple.

    A string that holds a JSON or Python list (a rendered template) is accepted too.
    """
    value = validate.license_function_names(value, what)
    if isinstance(value, str):
        value = _literal(value, what) if value.strip() else None
    if value is None:
        return None
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise SpotfireConfigurationError(
            f"{what} must be a list of license function names or None (all functions), got "
            f"{type(value).__name__} {value!r}."
        )
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise SpotfireConfigurationError(
                f"{what} must contain non-empty function names (strings), got {item!r}."
            )
        if item.strip() not in names:
            names.append(item.strip())
    return tuple(names) or None


def normalize_license_spec(value: Any) -> dict[str, Functions | None]:
    """Check the shape of ``licenses`` (license name -> functions or None) and normalize it."""
    if isinstance(value, str):
        value = _literal(value, "licenses")
    if not isinstance(value, Mapping):
        raise SpotfireConfigurationError(
            "licenses must map license names to lists of function names (or None for all functions), "
            f'e.g. {{"Spotfire.Dxp.WebPlayer": None}}; got {type(value).__name__} {value!r}.'
        )
    spec: dict[str, Functions | None] = {}
    for name, functions in value.items():
        if not isinstance(name, str) or not name.strip():
            raise SpotfireConfigurationError(f"licenses has a key that is not a license name: {name!r}.")
        spec[name.strip()] = normalize_functions(functions, f"licenses[{name!r}]")
    return spec


def _suggest(name: str, valid: Iterable[str]) -> str:
    valid = list(valid)
    folded = {v.lower(): v for v in valid}
    match = folded.get(name.lower()) or next(iter(difflib.get_close_matches(name, valid, n=1)), None)
    return f" Did you mean {match!r}?" if match else ""


def validate_license_spec(
    catalogue: Mapping[str, License], spec: Mapping[str, Functions | None]
) -> dict[str, Functions]:
    """Resolve ``spec`` to the exact function set of each license, in catalogue order.

    ``None`` becomes every function of the license. All unknown licenses and functions are
    reported together in one :class:`SpotfireConfigurationError`.
    """
    problems: list[str] = []
    resolved: dict[str, Functions] = {}
    for name, functions in spec.items():
        lic = catalogue.get(name)
        if lic is None:
            problems.append(
                f"Unknown license {name!r}.{_suggest(name, catalogue)} Valid licenses: "
                f"{', '.join(sorted(catalogue)) or '(the server lists none)'}."
            )
            continue
        available = lic.function_names
        if functions is None:
            resolved[name] = available
            continue
        unknown = [f for f in functions if f not in available]
        if unknown:
            hints = "".join(_suggest(f, available) for f in unknown[:1])
            problems.append(
                f"License {name!r} has no function {', '.join(map(repr, unknown))}.{hints} Its functions: "
                f"{', '.join(available)}."
            )
            continue
        resolved[name] = tuple(f for f in available if f in functions)
    if problems:
        raise SpotfireConfigurationError(
            " ".join(problems) + " Nothing was changed; fix the names and run the task again."
        )
    return resolved


@dataclass(frozen=True)
class LicenseChange:
    """One license change on a group: ``add`` / ``update`` (a PUT) or ``remove`` (a DELETE)."""

    action: Literal["add", "update", "remove"]
    license: str
    before: Functions
    after: Functions
    put_functions: Functions = ()
    """What the PUT sends; empty means "all functions" (the user asked for None)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description of the change (for XCom)."""
        return {
            "action": self.action,
            "license": self.license,
            "functions_before": list(self.before),
            "functions_after": list(self.after),
            "functions_added": [f for f in self.after if f not in self.before],
            "functions_removed": [f for f in self.before if f not in self.after],
        }


@dataclass(frozen=True)
class LicenseSyncPlan:
    """The smallest set of changes that makes a group's explicit licenses match a spec."""

    changes: tuple[LicenseChange, ...] = ()
    unchanged: tuple[str, ...] = ()
    unlisted_kept: tuple[str, ...] = ()
    expected: Mapping[str, Functions] = field(default_factory=dict)
    """The explicit assignments the group has once the plan is applied."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (for XCom)."""
        return {
            "changes": [c.to_dict() for c in self.changes],
            "unchanged": list(self.unchanged),
            "unlisted_kept": list(self.unlisted_kept),
        }


def plan_license_sync(
    current: Mapping[str, Functions],
    desired: Mapping[str, Functions],
    *,
    remove_unlisted: bool = False,
    all_functions: Mapping[str, Functions] | None = None,
) -> LicenseSyncPlan:
    """Compare a group's explicit licenses with the desired ones (function sets are unordered).

    ``all_functions`` (license -> every function) lets a PUT send ``[]`` where the desired set is
    the whole license, as the API documents for "all functions".
    """
    changes: list[LicenseChange] = []
    unchanged: list[str] = []
    for name, functions in desired.items():
        before = current.get(name)
        if before is not None and set(before) == set(functions):
            unchanged.append(name)
            continue
        whole = all_functions is not None and set(all_functions.get(name, ())) == set(functions)
        changes.append(
            LicenseChange(
                "add" if before is None else "update",
                name,
                before or (),
                functions,
                () if whole else functions,
            )
        )
    unlisted = [name for name in current if name not in desired]
    if remove_unlisted:
        changes.extend(LicenseChange("remove", name, current[name], ()) for name in unlisted)
    expected = {name: current[name] for name in unlisted if not remove_unlisted} | dict(desired)
    return LicenseSyncPlan(
        tuple(changes), tuple(unchanged), () if remove_unlisted else tuple(unlisted), expected
    )


# --------------------------------------------------------------------------------------------------
# Steps that talk to the server
# --------------------------------------------------------------------------------------------------
def license_catalogue() -> Operation[dict[str, License]]:
    """Every license of the server by name (with all of its functions)."""
    return {lic.name: lic for lic in (yield from licenses.list_licenses())}


def explicit_assignments(group_id: str) -> Operation[dict[str, Functions]]:
    """License -> functions set explicitly on ``group_id`` (raises naming the group if unknown).

    A listing that omits a license's functions is completed with a per-license read (a license
    is never set with zero functions: an empty PUT means all of them).
    """
    result: dict[str, Functions] = {}
    for lic in (yield from licenses.get_group_licenses(group_id, including_heritage=False)):
        functions = lic.function_names
        if not functions:
            listed = yield from licenses.get_group_license_functions(lic.name, group_id, False)
            functions = tuple(f.name for f in listed)
        result[lic.name] = functions
    return result


def _apply(group_id: str, change: LicenseChange) -> Operation[None]:
    if change.action == "remove":
        yield from licenses.remove_group_license(change.license, group_id)
    else:
        yield from licenses.set_group_license(change.license, group_id, list(change.put_functions))


def _describe(change: LicenseChange) -> str:
    if change.action == "remove":
        return f"remove {change.license}"
    return f"{change.action} {change.license} [{', '.join(change.after)}]"


def apply_plan(group_id: str, plan: LicenseSyncPlan, logger: Logger) -> Operation[None]:
    """Apply the changes in order; if one fails after others succeeded, say exactly what was done.

    Every planned removal is logged (as a warning) before the first change is applied.
    """
    for change in plan.changes:
        if change.action == "remove":
            logger.warning(
                "Group %s: removing license %s (functions %s): it is not listed and remove_unlisted=True.",
                group_id,
                change.license,
                ", ".join(change.before) or "none",
            )
    for index, change in enumerate(plan.changes):
        try:
            yield from _apply(group_id, change)
        except SpotfireError as exc:
            if index == 0:
                raise
            done = "; ".join(_describe(c) for c in plan.changes[:index])
            left = "; ".join(_describe(c) for c in plan.changes[index:])
            raise rewrap(
                exc,
                f"{exc} -- {index} of {len(plan.changes)} license changes were applied to group "
                f"{group_id} before this failure (done: {done}; not done: {left}). Re-running the "
                "task completes the rest: it only applies what is still missing.",
            ) from exc
        logger.info("Group %s: applied %s", group_id, _describe(change))


def verify(group_id: str, expected: Mapping[str, Functions]) -> Operation[None]:
    """Read the group's explicit licenses back and fail if they differ from ``expected``."""
    actual = yield from explicit_assignments(group_id)
    wrong = []
    for name in sorted(set(actual) | set(expected)):
        want, got = expected.get(name), actual.get(name)
        if (want is None) != (got is None) or set(want or ()) != set(got or ()):
            want_s = "not set" if want is None else f"[{', '.join(want)}]"
            got_s = "not set" if got is None else f"[{', '.join(got)}]"
            wrong.append(f"{name}: expected {want_s}, server has {got_s}")
    if wrong:
        raise SpotfireError(
            f"Spotfire accepted the license changes for group {group_id} but did not apply them: "
            f"{'; '.join(wrong)}. Check the server log and the group in the Administration Manager."
        )


def set_group_license(
    group_id: str,
    license_name: str,
    functions: Sequence[str] | None,
    logger: Logger = log,
) -> Operation[dict[str, Any]]:
    """Set one license on a group (``None``/empty functions: all); skip if already so; verify."""
    catalogue = yield from license_catalogue()
    desired = validate_license_spec(catalogue, {license_name: normalize_functions(functions)})
    current = yield from explicit_assignments(group_id)
    plan = plan_license_sync(
        {license_name: current[license_name]} if license_name in current else {},
        desired,
        all_functions={license_name: catalogue[license_name].function_names},
    )
    if plan.changes:
        yield from apply_plan(group_id, plan, logger)
        yield from verify(group_id, current | dict(desired))
    else:
        logger.info(
            "Group %s already has %s with exactly these functions; nothing to do.", group_id, license_name
        )
    return {
        "group_id": group_id,
        "license": license_name,
        "functions": list(desired[license_name]),
        "changed": bool(plan.changes),
        "functions_before": list(current.get(license_name, ())),
    }


def remove_group_license(group_id: str, license_name: str, logger: Logger = log) -> Operation[dict[str, Any]]:
    """Remove a license set explicitly on a group (no-op if not set); report what is still inherited."""
    validate_license_spec((yield from license_catalogue()), {license_name: None})
    current = yield from explicit_assignments(group_id)
    removed = license_name in current
    if removed:
        yield from licenses.remove_group_license(license_name, group_id)
        logger.info(
            "Group %s: removed %s (functions %s)", group_id, license_name, ", ".join(current[license_name])
        )
        yield from verify(group_id, {k: v for k, v in current.items() if k != license_name})
    else:
        logger.info(
            "Group %s does not have license %s set explicitly; nothing to remove.", group_id, license_name
        )
    still = yield from licenses.get_group_license_functions(license_name, group_id, True)
    inherited = [f.name for f in still]
    if inherited:
        logger.warning(
            "Group %s still has license %s through membership in other groups (functions: %s); remove it "
            "from those groups to take it away.",
            group_id,
            license_name,
            ", ".join(inherited),
        )
    return {
        "group_id": group_id,
        "license": license_name,
        "removed": removed,
        "functions_before": list(current.get(license_name, ())),
        "inherited_functions": inherited,
    }


def sync_group_licenses(
    group_id: str,
    licenses_spec: Any,
    *,
    remove_unlisted: bool = False,
    dry_run: bool = False,
    logger: Logger = log,
) -> Operation[dict[str, Any]]:
    """Make a group's explicit licenses match ``licenses_spec`` with the fewest writes; return the diff."""
    spec = normalize_license_spec(licenses_spec)
    catalogue = yield from license_catalogue()
    desired = validate_license_spec(catalogue, spec)
    current = yield from explicit_assignments(group_id)
    plan = plan_license_sync(
        current,
        desired,
        remove_unlisted=remove_unlisted,
        all_functions={name: catalogue[name].function_names for name in desired},
    )
    for name in plan.unlisted_kept:
        logger.info("Group %s keeps %s (not listed; remove_unlisted=False).", group_id, name)
    if not plan.changes:
        logger.info("Group %s already matches: no license changes.", group_id)
    elif dry_run:
        for change in plan.changes:
            logger.info("Dry run, group %s: would %s", group_id, _describe(change))
    else:
        yield from apply_plan(group_id, plan, logger)
        yield from verify(group_id, plan.expected)
    return {
        "group_id": group_id,
        "dry_run": dry_run,
        "applied": bool(plan.changes) and not dry_run,
        **plan.to_dict(),
    }


__all__ = [
    "Functions",
    "LicenseChange",
    "LicenseSpec",
    "LicenseSyncPlan",
    "apply_plan",
    "explicit_assignments",
    "license_catalogue",
    "normalize_functions",
    "normalize_license_spec",
    "plan_license_sync",
    "remove_group_license",
    "set_group_license",
    "sync_group_licenses",
    "validate_license_spec",
    "verify",
]
