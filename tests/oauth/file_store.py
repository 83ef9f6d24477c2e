"""A RefreshTokenStore in files shared by processes: whole-file writes, last writer wins, no locks.

Used by the multi-process tests and the benchmark in place of Airflow Variables: it offers
exactly what the Variable store offers (read-your-writes, last write wins) and nothing more.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire.oauth.store import (
    Lease,
    StoredGrant,
    fingerprint,
    lease_from_json,
    lease_to_json,
)


class FileRefreshTokenStore:
    """Grant and lease of each connection in two JSON files under ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _read(self, name: str) -> str | None:
        try:
            return (self.directory / name).read_text()
        except FileNotFoundError:
            return None

    def _write(self, name: str, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, self.directory / name)  # atomic: readers see the old or the new file

    def load(self, config: SpotfireConnectionConfig) -> StoredGrant | None:
        parsed = StoredGrant.from_json(self._read(f"{config.conn_id}.json") or "")
        if parsed is None or parsed[1] != fingerprint(config.refresh_token):
            return None
        return parsed[0]

    def save(self, config: SpotfireConnectionConfig, grant: StoredGrant) -> None:
        self._write(f"{config.conn_id}.json", grant.to_json(fingerprint(config.refresh_token)))

    def load_lease(self, config: SpotfireConnectionConfig) -> Lease | None:
        return lease_from_json(self._read(f"{config.conn_id}.lease.json"))

    def save_lease(self, config: SpotfireConnectionConfig, lease: Lease | None) -> None:
        self._write(f"{config.conn_id}.lease.json", lease_to_json(lease) if lease else "null")

    def clear(self, config: SpotfireConnectionConfig) -> None:
        for name in (f"{config.conn_id}.json", f"{config.conn_id}.lease.json"):
            (self.directory / name).unlink(missing_ok=True)
