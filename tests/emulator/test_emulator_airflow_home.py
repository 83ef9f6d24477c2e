"""The ``spotfire_airflow_home`` fixture, used as a user would: a fresh pytest process in a project directory.

The outer test suite has its own Airflow home (tests/conftest.py); the user's run must not see it, so the
inner pytest runs in a subprocess with every ``AIRFLOW*`` variable removed and ``HOME`` pointing at the
project directory (Airflow would otherwise write ``~/airflow/airflow.cfg``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

USER_DAG = """
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator

with DAG("refresh_sales", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    refresh = SpotfireRunAutomationJobOperator(
        task_id="refresh",
        library_path="/Airflow/Jobs/Refresh Sales Dashboard",
        deferrable=False,
        poll_interval=0.2,
    )
    report = SpotfireRunAutomationJobOperator(
        task_id="report",
        library_path="/Airflow/Jobs/Refresh Sales Dashboard",
        deferrable=True,
        poll_interval=0.2,
    )
    refresh >> report
"""

# Imports Airflow at module level (collection time), before the fixture runs: the fixture must cope.
USER_TEST = """
import os
from pathlib import Path

import airflow.settings

DAG_FILE = Path(__file__).parent / "dags" / "refresh_sales.py"


def test_refresh_dag(spotfire_airflow_home, spotfire_emulator):
    assert os.environ["AIRFLOW_HOME"] == str(spotfire_airflow_home.path)
    assert airflow.settings.SQL_ALCHEMY_CONN.endswith(str(spotfire_airflow_home.database))
    dag = spotfire_airflow_home.load_dag(DAG_FILE, "refresh_sales")
    dag_run = dag.test()
    assert dag_run.state == "success"
    jobs = spotfire_emulator.http().get("/_emulator/automation/jobs").json()
    assert [j["state"] for j in jobs] == ["Finished", "Finished"]
    assert {(j["queue_seconds"], j["run_seconds"]) for j in jobs} == {(0.1, 0.5)}
    assert all(j["status_polls"] >= 1 for j in jobs)
    (Path(__file__).parent / "home.txt").write_text(str(spotfire_airflow_home.path))


def test_second_test_same_home(spotfire_airflow_home):
    assert (Path(__file__).parent / "home.txt").read_text() == str(spotfire_airflow_home.path)
    assert spotfire_airflow_home.database.is_file()
"""


def test_fixture_runs_a_users_dag_with_dag_test(tmp_path: Path) -> None:
    """One blocking and one deferrable Automation Services task, run by ``dag.test()``."""
    project = tmp_path / "project"
    (project / "dags").mkdir(parents=True)
    (project / "dags" / "refresh_sales.py").write_text(USER_DAG)
    (project / "test_user_dag.py").write_text(USER_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["HOME"] = str(project)
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
    home = Path((project / "home.txt").read_text())
    assert not home.exists()  # the session fixture removed its Airflow home at the end
    assert not (project / "airflow" / "airflow.db").exists()  # nothing went to the default home's DB
