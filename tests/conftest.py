"""Test-suite wide setup: a throwaway Airflow home with a sqlite database.

Airflow reads its configuration at import time, so the environment is set here, before any
test module imports Airflow. DAG helpers (``run_dag`` ...) are in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

_HOME = Path(tempfile.mkdtemp(prefix="spotfire-airflow-home-"))
_DAGS = _HOME / "dags"
_DAGS.mkdir()
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A freshly reset sqlite metadata database in the throwaway AIRFLOW_HOME (once per session)."""
    from airflow.utils import db

    db.resetdb()
    return _HOME


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    return _DAGS


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    """Tokens are cached process-wide by design; each test starts without any."""
    from airflow_provider_spotfire._tokens import TokenManager

    TokenManager.clear_all()
    yield
    TokenManager.clear_all()


@pytest.fixture
def conn_with_poll(spotfire_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Factory: point ``spotfire_default`` at the emulator with the given extras; return its id."""

    def make(**extra: Any) -> str:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SPOTFIRE_DEFAULT", spotfire_emulator.connection_json("airflow", extra)
        )
        return "spotfire_default"

    return make
