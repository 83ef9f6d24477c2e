"""Pytest plugin (registered through the ``pytest11`` entry point) with Spotfire emulator fixtures.

The import of this module is kept light: the emulator itself (FastAPI, uvicorn, ...) is imported lazily
inside the fixtures, so merely having the provider installed does not slow down unrelated test runs.

Fixtures:

* ``spotfire_emulator_server`` (session): one :class:`EmulatorServer` started for the whole session.
* ``spotfire_emulator`` (function): the same server, with state and configuration reset to the defaults
  before the test.
* ``spotfire_conn_id`` (function): sets ``AIRFLOW_CONN_SPOTFIRE_DEFAULT`` to the emulator connection of the
  seeded ``airflow`` API client and returns ``"spotfire_default"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_spotfire.emulator.server import EmulatorServer

SPOTFIRE_CONN_ID = "spotfire_default"


@pytest.fixture(scope="session")
def spotfire_emulator_server() -> Iterator[EmulatorServer]:
    """A Spotfire Server emulator started once per test session (plain HTTP on a free port)."""
    from airflow_provider_spotfire.emulator.server import EmulatorServer

    server = EmulatorServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def spotfire_emulator(spotfire_emulator_server: EmulatorServer) -> EmulatorServer:
    """The session emulator with its state and configuration reset to the defaults for this test."""
    spotfire_emulator_server.reset()
    return spotfire_emulator_server


@pytest.fixture
def spotfire_conn_id(spotfire_emulator: EmulatorServer, monkeypatch: Any) -> str:
    """Point the Airflow connection ``spotfire_default`` at the emulator (API client ``airflow``)."""
    monkeypatch.setenv("AIRFLOW_CONN_SPOTFIRE_DEFAULT", spotfire_emulator.connection_json("airflow"))
    return SPOTFIRE_CONN_ID
