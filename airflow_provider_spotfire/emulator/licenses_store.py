"""License state of the emulator: the license catalog and the functions assigned to groups."""

from __future__ import annotations

import threading
from typing import Any

from airflow_provider_spotfire.emulator.core import Principals


class LicenseStore:
    """Catalog (license → display name and functions) and group → license → enabled functions."""

    def __init__(self, lock: threading.RLock, principals: Principals) -> None:
        self._lock = lock
        self._principals = principals
        self.licenses: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, list[str]]] = {}

    def group_assignments(self, group_id: str, including_heritage: bool) -> dict[str, list[str]]:
        """License → enabled functions of a group (explicit, or merged with the groups it is in)."""
        with self._lock:
            heritage = self._principals.group_ancestors(group_id) if including_heritage else []
            return self._merge([group_id, *heritage])

    def user_assignments(self, user_id: str) -> dict[str, list[str]]:
        """License → enabled functions of a user (union over all its groups incl. Everyone)."""
        with self._lock:
            return self._merge(self._principals.user_groups(user_id))

    def _merge(self, groups: list[str]) -> dict[str, list[str]]:
        merged: dict[str, set[str]] = {}
        for g in groups:
            for lic, funcs in self.assignments.get(g, {}).items():
                merged.setdefault(lic, set()).update(funcs)
        # keep catalog order
        return {
            lic: [f for f in self.licenses[lic]["functions"] if f in merged[lic]]
            for lic in self.licenses
            if lic in merged
        }

    def snapshot(self) -> dict[str, Any]:
        """Catalog names and non-empty assignments for ``GET /_emulator/state``."""
        with self._lock:
            return {
                "catalog": list(self.licenses),
                "assignments": {
                    gid: {lic: list(funcs) for lic, funcs in lics.items()}
                    for gid, lics in self.assignments.items()
                    if lics
                },
            }
