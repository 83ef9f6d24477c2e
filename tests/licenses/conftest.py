"""Fixtures of the license tests: hooks on the emulator as different API clients, request-log helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire.emulator import seed
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

LICENSES_PATH = "/spotfire/api/rest/licenses/v1"

# Seeded groups and users of the emulator (see emulator/seed.py)
ADMINISTRATOR = seed.GROUP_ADMINISTRATOR
EVERYONE = seed.GROUP_EVERYONE
SALES = seed.GROUP_SALES
SALES_EMEA = seed.GROUP_SALES_EMEA  # member of Sales
SALES_NORDICS = seed.GROUP_SALES_NORDICS  # member of Sales EMEA
FINANCE = seed.GROUP_FINANCE
UPLOADERS = seed.GROUP_AIRFLOW_UPLOADERS  # no licenses
ALICE = seed.USER_ALICE  # Sales Nordics, Airflow Uploaders, Administrator
BOB = seed.USER_BOB  # Finance
CAROL = seed.USER_CAROL  # no groups (Everyone only)

WEBPLAYER = seed.LIC_WEBPLAYER
AUTHOR = seed.LIC_BUSINESS_AUTHOR
ANALYST = seed.LIC_PROFESSIONAL
EXTENSIONS = seed.LIC_EXTENSIONS
METRICS = seed.LIC_METRICS


def all_functions(license_name: str) -> list[str]:
    """Every function of a seeded license, in catalogue order."""
    return [name for name, _ in seed.LICENSES[license_name][1]]


# Quick retries so that fault-injection tests stay fast.
FAST_RETRIES = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02, max_total_wait=5)


@pytest.fixture
def hook(spotfire_conn_id: str) -> Iterator[SpotfireHook]:
    """A sync hook on the emulator as the seeded administrator client ``airflow``."""
    h = SpotfireHook(spotfire_conn_id, retry_policy=FAST_RETRIES)
    yield h
    h.close()


@pytest.fixture
def conn_as(spotfire_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """``conn_as("licenses-reader")`` -> the id of an env-var connection for that API client."""

    def _conn_as(client_id: str) -> str:
        conn_id = "spotfire_" + client_id.replace("-", "_")
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", spotfire_emulator.connection_json(client_id))
        return conn_id

    return _conn_as


@pytest.fixture
def hook_as(conn_as: Callable[[str], str]) -> Iterator[Callable[[str], SpotfireHook]]:
    """``hook_as("licenses-writer")`` -> a sync hook on the emulator as that API client."""
    hooks: list[SpotfireHook] = []

    def _hook_as(client_id: str) -> SpotfireHook:
        h = SpotfireHook(conn_as(client_id), retry_policy=FAST_RETRIES)
        hooks.append(h)
        return h

    yield _hook_as
    for h in hooks:
        h.close()


def license_requests(emulator: Any, *methods: str) -> list[dict[str, Any]]:
    """License API requests in the emulator's request log (optionally only some methods)."""
    entries = emulator.requests_log(path_prefix=LICENSES_PATH)
    return [e for e in entries if not methods or e["method"] in methods]


def license_writes(emulator: Any) -> list[dict[str, Any]]:
    """PUT/DELETE requests of the license API that reached the emulator."""
    return license_requests(emulator, "PUT", "DELETE")


def assignments(emulator: Any) -> dict[str, dict[str, list[str]]]:
    """The emulator's explicit license assignments: group id -> license -> functions."""
    return emulator.inspect()["licenses"]["assignments"]
