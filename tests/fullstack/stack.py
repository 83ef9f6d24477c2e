"""A real Airflow deployment for the full-stack tests: emulator + api-server, scheduler, triggerer, dag-processor.

Every process is a separate OS process started from the project venv with its own PID and log file in a
throwaway ``AIRFLOW_HOME``; :meth:`FullStack.stop` ends them by PID (SIGTERM, then SIGKILL after a timeout)
and reports any process or child process that survived.

Run it by hand to look at the UI: ``.venv/bin/python -m tests.fullstack.stack`` (Ctrl-C stops it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
CLIENT_ID = "airflow"
CLIENT_SECRET = "airflow-secret"
COMPONENTS = ("api-server", "scheduler", "triggerer", "dag-processor")
HEALTH_KEYS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class StopReport:
    """What :meth:`FullStack.stop` observed: exit codes, forced kills and surviving processes."""

    exit_codes: dict[str, int | None] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)


class FullStack:
    """Start/stop the emulator and the four Airflow components; REST helpers for the tests."""

    def __init__(
        self, home: Path | None = None, *, parallelism: int = 4, dags_source: Path = EXAMPLE_DAGS
    ) -> None:
        self.home = Path(home or tempfile.mkdtemp(prefix="spotfire-fullstack-"))
        self.dags_source = dags_source
        self.extra_env: dict[str, str] = {}  # set before start(): overrides of the environment below
        self.dags = self.home / "dags"
        self.proc_logs = self.home / "process-logs"
        self.parallelism = parallelism
        self.procs: list[Proc] = []
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.worker_log_port = free_port()
        self.trigger_log_port = free_port()
        self.emulator_url = ""
        self._http: httpx.Client | None = None
        self.example_runs: dict[str, str] | None = None
        self.examples_triggered_at = 0.0

    # ------------------------------------------------------------------ environment
    def env(self) -> dict[str, str]:
        """Environment of every Airflow process (nothing inherited from the test process's Airflow setup)."""
        from cryptography.fernet import Fernet

        if not hasattr(self, "_secrets"):
            self._secrets = {
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            }
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(self._secrets)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # parse each file once: re-parsing pandas-importing DAGs every 30 s steals the 2 cores
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
                # a loaded CI machine needs more than 30 s to import a DAG file in a fresh task process
                "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
                "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # the log servers of the workers and the triggerer: free ports, so runs can overlap
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        if self.emulator_url:
            env["AIRFLOW_CONN_SPOTFIRE_DEFAULT"] = json.dumps(
                {
                    "conn_type": "spotfire",
                    "host": self.emulator_url,
                    "login": CLIENT_ID,
                    "password": CLIENT_SECRET,
                }
            )
        return env

    # ------------------------------------------------------------------ lifecycle
    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        self.proc_logs.mkdir(parents=True, exist_ok=True)
        log_path = self.proc_logs / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                argv,
                env=self.env() | (env or {}),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest only; we stop them by PID
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def start(self, timeout: float | None = None) -> FullStack:
        """Start every component and wait until they are healthy and every DAG file is parsed.

        ``timeout`` defaults to ``SPOTFIRE_FULLSTACK_START_TIMEOUT`` (seconds) or 240 s: on a loaded
        2-core machine migrating and starting four Airflow processes can take minutes.
        """
        if timeout is None:
            timeout = float(os.environ.get("SPOTFIRE_FULLSTACK_START_TIMEOUT", "240"))
        started = time.monotonic()
        shutil.copytree(self.dags_source, self.dags, ignore=shutil.ignore_patterns("__pycache__"))
        ready_file = self.home / "emulator.json"
        self._spawn(
            "emulator", [sys.executable, str(Path(__file__).with_name("emulator_runner.py")), str(ready_file)]
        )
        migrate = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=self.env(), cwd=self.home, capture_output=True, timeout=timeout
        )
        (self.proc_logs / "db-migrate.log").write_bytes(migrate.stdout + migrate.stderr)
        if migrate.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed:\n{(migrate.stdout + migrate.stderr).decode()[-4000:]}"
            )
        self.emulator_url = wait_for(
            "the emulator",
            lambda: ready_file.exists() and json.loads(ready_file.read_text())["url"],
            timeout=30,
            interval=0.1,
        )
        self._spawn(
            "api-server", [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)]
        )
        for name in COMPONENTS[1:]:
            self._spawn(name, [AIRFLOW, name])
        remaining = lambda: timeout - (time.monotonic() - started)  # noqa: E731
        wait_for("all components healthy", self._healthy, timeout=remaining())
        wait_for("the dag-processor to parse every DAG file", self._all_files_parsed, timeout=remaining())
        self.startup_seconds = time.monotonic() - started
        return self

    def _check_alive(self) -> None:
        for p in self.procs:
            if p.popen.poll() is not None:
                raise RuntimeError(
                    f"{p.name} (pid {p.pid}) exited with {p.popen.returncode}:\n{self.tail(p.name)}"
                )

    def _healthy(self) -> bool:
        self._check_alive()
        health = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
        return health["metadatabase"]["status"] == "healthy" and all(
            health[key]["status"] == "healthy" for key in HEALTH_KEYS.values()
        )

    def _all_files_parsed(self) -> bool:
        self._check_alive()
        # the files Airflow's safe mode parses at all (they mention both "airflow" and "dag")
        files = {
            str(p)
            for p in self.dags.glob("*.py")
            if b"airflow" in (text := p.read_bytes().lower()) and b"dag" in text
        }
        seen = {d["fileloc"] for d in self.get("/api/v2/dags", params={"limit": 1000})["dags"]}
        errors = self.get("/api/v2/importErrors")["import_errors"]
        seen |= {
            str(self.dags / e["filename"]) if not os.path.isabs(e["filename"]) else e["filename"]
            for e in errors
        }
        return files <= seen

    def stop(self, timeout: float = 30.0) -> StopReport:
        """SIGTERM every process by PID (Airflow components first), SIGKILL what is left after ``timeout``."""
        report = StopReport()
        if self._http is not None:
            self._http.close()
            self._http = None
        children: dict[str, list[psutil.Process]] = {}
        for p in self.procs:
            try:
                children[p.name] = psutil.Process(p.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children[p.name] = []
        order = [p for p in self.procs if p.name != "emulator"] + [
            p for p in self.procs if p.name == "emulator"
        ]
        for group in (
            order[:-1],
            order[-1:],
        ):  # Airflow first (it may still talk to the emulator), then the emulator
            for p in group:
                if p.popen.poll() is None:
                    os.kill(p.pid, signal.SIGTERM)
            for p in group:
                try:
                    p.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    report.killed.append(f"{p.name} (pid {p.pid})")
                    os.kill(p.pid, signal.SIGKILL)
                    p.popen.wait(10)
                report.exit_codes[p.name] = p.popen.returncode
        for name, kids in children.items():
            _gone, alive = psutil.wait_procs(kids, timeout=10)
            for child in alive:
                report.survivors.append(f"{name} child pid {child.pid}")
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        return report

    # ------------------------------------------------------------------ logs
    def tail(self, name: str, chars: int = 6000) -> str:
        path = self.proc_logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return text[-chars:]

    def log_text(self, name: str) -> str:
        path = self.proc_logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_tails(self, chars: int = 3000) -> str:
        return "\n".join(
            f"----- {p.name} (pid {p.pid}) {p.log_path}\n{self.tail(p.name, chars)}" for p in self.procs
        )

    # ------------------------------------------------------------------ REST
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.api_url, timeout=30)
        return self._http

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http().request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        resp = self.request("GET", path, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def emulator(self, path: str, **params: Any) -> Any:
        resp = httpx.get(f"{self.emulator_url}{path}", params=params, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def issued_tokens(self) -> list[str]:
        """Every access/refresh token value the emulator has issued so far (test-only runner route)."""
        return [t["value"] for t in self.emulator("/_emulator/fullstack/issued-tokens")]

    def emulator_requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The emulator's request log after sequence number ``since`` (no tokens or secrets in it)."""
        return (
            self.emulator("/_emulator/requests", since=since)
            if since
            else self.emulator("/_emulator/requests")
        )

    def last_request_seq(self) -> int:
        entries = self.emulator("/_emulator/requests", limit=1)
        return entries[-1]["seq"] if entries else 0

    # ------------------------------------------------------------------ DAG runs
    def trigger(self, dag_id: str) -> str:
        """Unpause ``dag_id`` and trigger a run with a logical date (``{{ ds }}`` needs one); return the run id."""
        resp = self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        resp.raise_for_status()
        now = datetime.now(UTC).isoformat()
        resp = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": now, "conf": {}})
        if resp.status_code >= 400:
            raise RuntimeError(f"triggering {dag_id} failed: {resp.status_code} {resp.text}")
        return resp.json()["dag_run_id"]

    def schedule_none_dags(self) -> list[str]:
        """The DAGs with ``schedule=None`` (no timetable summary) among the parsed ones."""
        dags = self.get("/api/v2/dags", params={"limit": 1000})["dags"]
        return sorted(d["dag_id"] for d in dags if d["timetable_summary"] is None)

    def trigger_examples(self) -> dict[str, str]:
        """Trigger every ``schedule=None`` DAG once (the first call only); ``{dag_id: run_id}``."""
        if self.example_runs is None:
            self.example_runs = {dag_id: self.trigger(dag_id) for dag_id in self.schedule_none_dags()}
            self.examples_triggered_at = time.monotonic()
        return self.example_runs

    def run_path(self, dag_id: str, run_id: str) -> str:
        from urllib.parse import quote

        return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"{self.run_path(dag_id, run_id)}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The whole log of one try as the UI gets it (JSON lines of structured events)."""
        resp = self.request(
            "GET",
            f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
        )
        resp.raise_for_status()
        return resp.text

    # ------------------------------------------------------------------ restarts and HA (appended)
    def proc(self, name: str) -> Proc:
        """The started process called ``name``."""
        return next(p for p in self.procs if p.name == name)

    def stop_process(self, name: str, timeout: float = 60.0) -> int | None:
        """SIGTERM one component by PID and wait for it (as an orchestrator stopping one pod); its exit code."""
        p = self.proc(name)
        if p.popen.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
        return p.popen.wait(timeout)

    def spawn_triggerer(self, name: str, capacity: int | None = None) -> Proc:
        """One more ``airflow triggerer`` (HA: several may run at once), with its own log file."""
        argv = [AIRFLOW, "triggerer"] + (["--capacity", str(capacity)] if capacity else [])
        # triggerers running at once each serve their logs on a port of their own
        return self._spawn(name, argv, {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())})

    def emulator_call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call to the emulator's admin API (``/_emulator/...``); the decoded JSON answer."""
        resp = httpx.request(method, f"{self.emulator_url}{path}", timeout=30, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None


def _main() -> None:  # pragma: no cover - manual use
    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    stack = FullStack()
    try:
        stack.start()
        print(f"Airflow UI: {stack.api_url}  emulator: {stack.emulator_url}  home: {stack.home}", flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        print(stack.stop(), flush=True)


if __name__ == "__main__":
    _main()
