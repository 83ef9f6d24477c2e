"""Fixtures of the library upload tests: a hook on the emulator, SBDF files and state helpers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire._tokens import TokenManager
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

UPLOAD_PATH = "/spotfire/api/rest/library/v1/upload"
REPORTS = "/Airflow/Reports"
SBDF_HEADER = b"\xdf\x5b\x01\x01\x00"  # SBDF section marker + file header id + version 1.0

# Quick retries so that fault-injection tests stay fast.
FAST_RETRIES = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05, max_total_wait=10)
NO_RETRIES = RetryPolicy(max_attempts=1)


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    """Each test starts without cached tokens (the emulator forgets its tokens on reset)."""
    TokenManager.clear_all()
    yield
    TokenManager.clear_all()


@pytest.fixture
def hook(spotfire_conn_id: str) -> Iterator[SpotfireHook]:
    """A sync hook on the emulator (API client ``airflow``) with quick retries."""
    h = SpotfireHook(spotfire_conn_id, retry_policy=FAST_RETRIES)
    yield h
    h.close()


def sbdf_bytes(size: int, seed: int = 0) -> bytes:
    """``size`` bytes starting with a valid SBDF header, then seeded pseudo-random filler."""
    filler = hashlib.shake_256(f"sbdf-{seed}".encode()).digest(max(0, size - len(SBDF_HEADER)))
    return (SBDF_HEADER + filler)[:size]


@pytest.fixture
def make_sbdf(tmp_path: Path) -> Callable[..., Path]:
    """Factory: an SBDF-headed file of ``size`` bytes (filler after the header) in tmp_path."""

    def make(size: int = 300_000, name: str = "data.sbdf", seed: int = 0) -> Path:
        path = tmp_path / name
        path.write_bytes(sbdf_bytes(size, seed))
        return path

    return make


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def items_at(emulator: Any, library_path: str) -> list[dict[str, Any]]:
    """Library items at ``library_path`` (the emulator's state)."""
    return [i for i in emulator.inspect()["library"]["items"] if i["path"] == library_path]


def item_bytes(emulator: Any, library_path: str) -> bytes:
    """Content of the one item at ``library_path``, downloaded from the emulator."""
    found = items_at(emulator, library_path)
    assert len(found) == 1, f"expected one item at {library_path}, found {found}"
    return emulator.item_content(found[0]["id"])


def upload_jobs(emulator: Any, status: str | None = None) -> list[dict[str, Any]]:
    """Upload jobs the emulator knows (optionally only those with ``status``)."""
    jobs = emulator.inspect()["upload_jobs"]
    return [j for j in jobs if status is None or j["status"] == status]


def assert_nothing_left(emulator: Any, library_path: str) -> None:
    """No open upload job and no item at ``library_path``."""
    assert upload_jobs(emulator, "open") == []
    assert items_at(emulator, library_path) == []


def upload_requests(emulator: Any) -> list[dict[str, Any]]:
    """Request-log entries of the upload API (oldest first)."""
    return emulator.requests_log(path_prefix=UPLOAD_PATH)


def chunk_posts(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunk POSTs of a request log."""
    return [r for r in log if r["method"] == "POST" and "chunk=" in (r.get("query") or "")]


def chunk_number(entry: dict[str, Any]) -> int:
    """The ``chunk`` query parameter of a logged request."""
    from urllib.parse import parse_qs

    return int(parse_qs(entry["query"])["chunk"][0])


@dataclass
class RecordingTI:
    """The part of a task instance the operator uses; records XCom pushes."""

    dag_id: str = "dag_x"
    task_id: str = "upload"
    run_id: str = "manual__1"
    try_number: int = 1
    map_index: int = -1
    xcom: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def context() -> dict[str, Any]:
    """A minimal task context (``ti`` records XCom pushes)."""
    return {"ti": RecordingTI()}
