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
    )  # no poll_interval: the connection's (0.2 s from the fixture), not the default 15 s
    report = SpotfireRunAutomationJobOperator(
        task_id="report",
        library_path="/Airflow/Jobs/Refresh Sales Dashboard",
        deferrable=True,
    )
    refresh >> report
"""

# Imports Airflow at module level (collection time), before the fixture runs: the fixture must cope.
USER_TEST = """
import json
import os
import time
from datetime import datetime
from pathlib import Path

import airflow.settings

DAG_FILE = Path(__file__).parent / "dags" / "refresh_sales.py"


def test_refresh_dag(spotfire_airflow_home, spotfire_emulator):
    assert os.environ["AIRFLOW_HOME"] == str(spotfire_airflow_home.path)
    assert airflow.settings.SQL_ALCHEMY_CONN.endswith(str(spotfire_airflow_home.database))
    extra = json.loads(os.environ["AIRFLOW_CONN_SPOTFIRE_DEFAULT"])["extra"]
    assert extra["poll_interval"] == 0.2
    dag = spotfire_airflow_home.load_dag(DAG_FILE, "refresh_sales")
    started = time.monotonic()
    dag_run = dag.test()
    elapsed = time.monotonic() - started
    assert dag_run.state == "success"
    jobs = spotfire_emulator.http().get("/_emulator/automation/jobs").json()
    assert [j["state"] for j in jobs] == ["Finished", "Finished"]
    assert {(j["queue_seconds"], j["run_seconds"]) for j in jobs} == {(0.1, 0.5)}
    assert all(j["status_polls"] >= 1 for j in jobs)
    for job in jobs:  # polled at the connection's 0.2 s, not at the default 15 s
        one = spotfire_emulator.http().get(f"/_emulator/automation/jobs/{job['id']}").json()
        times = [datetime.fromisoformat(t) for t in one["status_poll_times"]]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        assert all(gap < 1.0 for gap in gaps), gaps
        noticed = (times[-1] - datetime.fromisoformat(one["finishedAt"])).total_seconds()
        assert 0 <= noticed < 1.0, noticed  # the finish was seen at the next poll, well within a second
    assert elapsed < 15, elapsed  # one 15 s poll alone would exceed it
    (Path(__file__).parent / "home.txt").write_text(str(spotfire_airflow_home.path))


def test_second_test_same_home(spotfire_airflow_home):
    assert (Path(__file__).parent / "home.txt").read_text() == str(spotfire_airflow_home.path)
    assert spotfire_airflow_home.database.is_file()
"""


def test_fixture_runs_a_users_dag_with_dag_test(tmp_path: Path) -> None:
    """One blocking and one deferrable Automation Services task without ``poll_interval``, run by ``dag.test()``.

    Both poll at the fixture connection's ``poll_interval`` (0.2 s), so the DAG is done in seconds.
    """
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
