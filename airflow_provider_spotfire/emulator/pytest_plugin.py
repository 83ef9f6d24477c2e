"""Pytest plugin (registered through the ``pytest11`` entry point) with Spotfire emulator fixtures.

The import of this module is kept light: the emulator itself (FastAPI, uvicorn, ...) is imported lazily
inside the fixtures, so merely having the provider installed does not slow down unrelated test runs.

Fixtures:

* ``spotfire_emulator_server`` (session): one :class:`EmulatorServer` started for the whole session.
* ``spotfire_emulator`` (function): the same server, with state and configuration reset to the defaults
  before the test.
* ``spotfire_conn_id`` (function): sets ``AIRFLOW_CONN_SPOTFIRE_DEFAULT`` to the emulator connection of the
  seeded ``airflow`` API client and returns ``"spotfire_default"``.
* ``spotfire_airflow_home`` (function): everything ``dag.test()`` needs — a temporary ``AIRFLOW_HOME`` with a
  migrated sqlite database and a dags folder (made once per session), the connection of
  ``spotfire_conn_id`` with the extra ``poll_interval`` 0.2 s (the default poll of every waiting task), and
  an emulator with short Automation Services jobs. Returns the
  :class:`~airflow_provider_spotfire.emulator.airflow_home.AirflowHome` (``load_dag(path, dag_id)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_spotfire.emulator.airflow_home import AirflowHome
    from airflow_provider_spotfire.emulator.server import EmulatorServer

SPOTFIRE_CONN_ID = "spotfire_default"
# emulator settings of spotfire_airflow_home: jobs of 0.1 s queue + 0.5 s run instead of 0.3 + 1.5 s
FAST_AUTOMATION_CONFIG = {"as_queue_seconds": 0.1, "as_run_seconds": 0.5}
# connection extra of spotfire_airflow_home: tasks that do not pass poll_interval poll every 0.2 s
FAST_POLL_INTERVAL = 0.2


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


@pytest.fixture(scope="session")
def spotfire_airflow_home_session(tmp_path_factory: Any) -> Iterator[AirflowHome]:
    """The session's temporary Airflow home (migrated sqlite database, dags folder); restored at the end."""
    from airflow_provider_spotfire.emulator.airflow_home import AirflowHome

    home = AirflowHome(tmp_path_factory.mktemp("spotfire-airflow")).activate()
    try:
        yield home
    finally:
        home.deactivate()


@pytest.fixture
def spotfire_airflow_home(
    spotfire_airflow_home_session: AirflowHome,
    spotfire_emulator: EmulatorServer,
    spotfire_conn_id: str,
    monkeypatch: Any,
) -> AirflowHome:
    """Ready for ``dag.test()``: Airflow home + DB + dags folder, the emulator connection, fast waits.

    The connection gets the extra ``poll_interval`` 0.2 s (tasks that pass no ``poll_interval`` poll
    that often) and the emulator's Automation Services jobs are short.
    """
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPOTFIRE_DEFAULT",
        spotfire_emulator.connection_json("airflow", {"poll_interval": FAST_POLL_INTERVAL}),
    )
    spotfire_emulator.set_config(**FAST_AUTOMATION_CONFIG)
    return spotfire_airflow_home_session
