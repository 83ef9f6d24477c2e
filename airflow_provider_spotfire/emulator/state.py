"""Thread-safe in-memory state of the Spotfire Server emulator: the core plus one store per API.

* core (:mod:`.core`): ``clock``, ``activity`` (counters, request log), ``principals`` (clients, users,
  groups);
* ``oauth`` (:mod:`.oauth_store`): tokens and authorization codes;
* ``library`` (:mod:`.library_store`): folders, items, upload jobs (bytes in files, never in memory);
* ``automation`` (:mod:`.automation_store`): Automation Services jobs;
* ``licensing`` (:mod:`.licenses_store`): license catalog and group assignments.

One ``threading.RLock`` (``EmulatorState.lock``) guards everything. ``reset()`` builds fresh stores with the
seeded data (and restores the configuration the emulator was created with). The flat attributes
(``tokens``, ``clients``, ``upload_jobs``, ``counters``, ...) stay as shortcuts into the stores.
"""

from __future__ import annotations

import collections
import itertools
import os
import random
import shutil
import tempfile
import threading
import weakref
from typing import Any

from airflow_provider_spotfire.emulator import seed
from airflow_provider_spotfire.emulator.automation_store import AutomationStore
from airflow_provider_spotfire.emulator.config import EmulatorConfig
from airflow_provider_spotfire.emulator.core import Activity, ApiClient, Clock, Principals, iso
from airflow_provider_spotfire.emulator.library_store import LibraryStore
from airflow_provider_spotfire.emulator.licenses_store import LicenseStore
from airflow_provider_spotfire.emulator.oauth_store import TokenStore


def _shortcut(store: str, attribute: str) -> Any:
    """A read-only property ``state.<attribute>`` for ``state.<store>.<attribute>`` (stores change on reset)."""
    return property(lambda self: getattr(getattr(self, store), attribute), doc=f"``{store}.{attribute}``")


class EmulatorState:
    """All mutable emulator state behind one lock: the core and the per-API stores."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.lock = threading.RLock()
        self.initial_config: EmulatorConfig = (config or EmulatorConfig()).model_copy(deep=True)
        self.config: EmulatorConfig = self.initial_config.model_copy(deep=True)
        base_parent = self.config.data_dir
        if base_parent:
            os.makedirs(base_parent, exist_ok=True)
        self.base_dir = tempfile.mkdtemp(prefix="spotfire-emulator-", dir=base_parent)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.base_dir, ignore_errors=True)
        self._generation = itertools.count()
        self.reset(restore_config=False)

    # --- lifecycle
    def _build_stores(self) -> None:
        lock, cfg = self.lock, self.config
        self.clock = Clock(lock)
        self.activity = Activity(lock, cfg.request_log_size)
        self.principals = Principals(lock)
        self.oauth = TokenStore(lock, self.clock, self.activity)
        data_dir = os.path.join(self.base_dir, f"gen-{next(self._generation)}")
        self.library = LibraryStore(lock, self.clock, self.principals, data_dir)
        self.automation = AutomationStore(lock, cfg.as_duration_seed)
        self.licensing = LicenseStore(lock, self.principals)
        self.fault_script: collections.deque[dict[str, Any]] = collections.deque()
        self.fault_rng = random.Random(cfg.fault_seed)

    def reset(self, restore_config: bool = True) -> None:
        """Restore the seeded state; by default also the configuration the emulator was created with."""
        old_dir = self.library.data_dir if hasattr(self, "library") else None
        with self.lock:
            if restore_config:
                self.config = self.initial_config.model_copy(deep=True)
            self._build_stores()
            seed.populate(self)
        if old_dir:
            shutil.rmtree(old_dir, ignore_errors=True)

    def close(self) -> None:
        """Delete all files of this emulator instance."""
        self._finalizer()

    def set_config(self, patch: dict[str, Any]) -> EmulatorConfig:
        """Validate and apply a runtime configuration patch (raises ``ValueError``)."""
        with self.lock:
            new = self.config.patched(**patch)
            if "fault_seed" in patch:
                self.fault_rng = random.Random(new.fault_seed)
            if "as_duration_seed" in patch:
                self.automation.rng = random.Random(new.as_duration_seed)
            self.activity.resize_log(new.request_log_size)
            self.config = new
            return new

    # --- time and counters (core)
    def now(self) -> float:
        """Emulator wall clock: real (or frozen) time plus the offset set by ``advance_clock``."""
        return self.clock.now()

    def freeze_clock(self, frozen: bool = True) -> None:
        """Stop (or restart) the emulator clock; only ``advance_clock`` moves a frozen clock."""
        self.clock.freeze(frozen)

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator clock forward (token expiry, AS job progress)."""
        return self.clock.advance(seconds)

    def count(self, name: str, key: str | None = None, n: int = 1) -> None:
        """Increment a counter (or a keyed sub-counter)."""
        self.activity.count(name, key, n)

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append one entry to the bounded request log."""
        self.activity.log_request(entry)

    # --- shortcuts into the stores (kept for code written against the flat state)
    counters = _shortcut("activity", "counters")
    request_log = _shortcut("activity", "request_log")
    clients = _shortcut("principals", "clients")
    users = _shortcut("principals", "users")
    groups = _shortcut("principals", "groups")
    tokens = _shortcut("oauth", "tokens")
    auth_codes = _shortcut("oauth", "auth_codes")
    items = _shortcut("library", "items")
    upload_jobs = _shortcut("library", "upload_jobs")
    as_jobs = _shortcut("automation", "jobs")

    def register_client(self, client_id: str, **kwargs: Any) -> ApiClient:
        """Register an API client (``principals.register_client``)."""
        return self.principals.register_client(client_id, **kwargs)

    # --- inspection
    def snapshot(self) -> dict[str, Any]:
        """Everything the inspection endpoint ``GET /_emulator/state`` shows."""
        with self.lock:
            now = self.now()
            return {
                "now": iso(now),
                "clock_offset": self.clock.offset,
                "clock_frozen": self.clock.frozen_at is not None,
                "data_dir": self.base_dir,
                **self.principals.snapshot(),
                "library": self.library.snapshot(),
                "upload_jobs": [j.to_dict() for j in self.library.upload_jobs.values()],
                "as_jobs": self.automation.snapshot(now),
                "licenses": self.licensing.snapshot(),
                "tokens": self.oauth.snapshot(now),
                "counters": _deepcopy_json(self.activity.counters),
                "fault_script": list(self.fault_script),
            }


def _deepcopy_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy_json(v) for v in obj]
    return obj
