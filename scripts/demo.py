"""Run an example DAG end to end against the embedded Spotfire emulator and report in Spotfire terms.

1. starts the emulator (``python -m airflow_provider_spotfire.emulator``) on a free loopback port;
2. creates a throwaway AIRFLOW_HOME with a sqlite database and ``example_dags/`` as the dags folder;
3. points ``AIRFLOW_CONN_SPOTFIRE_DEFAULT`` at the emulator and runs ``airflow dags test <dag>``;
4. prints what changed in Spotfire: library items, upload jobs, Automation Services jobs, licenses.

Usage: ``bash scripts/demo.sh [--dag-id DAG_ID] [--keep-home]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DAG = "example_spotfire_end_to_end"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_spotfire.emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"The emulator exited at start:\n{proc.stderr.read() if proc.stderr else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_emulator/state", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("The emulator did not answer within 30 s.")


def state(url: str) -> dict:
    return httpx.get(f"{url}/_emulator/state", timeout=10).json()


def report(before: dict, after: dict) -> list[str]:
    """Human-readable lines for what the DAG run changed in Spotfire."""
    lines: list[str] = []
    old_items = {i["path"]: i for i in before["library"]["items"]}
    for item in after["library"]["items"]:
        prev = old_items.get(item["path"])
        if prev is None or prev.get("modified") != item.get("modified"):
            verb = "created" if prev is None else "replaced"
            lines.append(
                f"  library  {verb} {item['path']} ({item['type']}, {item['size']:,} bytes, "
                f"sha256 {str(item.get('sha256', ''))[:12]}…)"
            )
    old_jobs = {j["jobId"] for j in before["upload_jobs"]}
    for job in after["upload_jobs"]:
        if job["jobId"] not in old_jobs:
            lines.append(
                f"  upload   job {job['jobId']} → {job['path']}: {job['status']}, "
                f"{len(job['uploadedChunks'])} chunk(s), {job['bytesReceived']:,} bytes"
            )
    old_as = {j["jobId"] for j in before["as_jobs"]}
    for job in after["as_jobs"]:
        if job["jobId"] not in old_as:
            steps = " → ".join(f"{h['status']} {h['at'][11:19]}" for h in job["history"])
            source = job["source"].get("value") or job["source"].get("kind")
            lines.append(f"  AS job   {job['jobId']} ({source}): {steps}")
    groups = {g["id"]: g["name"] for g in after["groups"]}
    old_lic = before["licenses"]["assignments"]
    for gid, lics in after["licenses"]["assignments"].items():
        for name, funcs in lics.items():
            if old_lic.get(gid, {}).get(name) != funcs:
                lines.append(f"  license  {groups.get(gid, gid)}: {name} ({len(funcs)} function(s))")
        for name in set(old_lic.get(gid, {})) - set(lics):
            lines.append(f"  license  {groups.get(gid, gid)}: {name} removed")
    tokens = after["counters"].get("token_requests", {})
    lines.append(f"  oauth2   token requests: {', '.join(f'{k}={v}' for k, v in tokens.items()) or 'none'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dag-id", default=DEFAULT_DAG)
    parser.add_argument("--keep-home", action="store_true", help="keep the throwaway AIRFLOW_HOME")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="spotfire-demo-home-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"Starting the Spotfire emulator at {url} (a development tool, not a Spotfire Server)")
    emulator = start_emulator(port)
    try:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW_CONN_SPOTFIRE_DEFAULT": json.dumps(
                {"conn_type": "spotfire", "host": url, "login": "airflow", "password": "airflow-secret"}
            ),
        }
        airflow = [sys.executable, "-m", "airflow"]
        print(f"Preparing a throwaway Airflow home in {home}")
        subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        before = state(url)
        print(f"Running: airflow dags test {args.dag_id}")
        started = time.monotonic()
        result = subprocess.run(
            [*airflow, "dags", "test", args.dag_id], env=env, capture_output=True, text=True
        )
        elapsed = time.monotonic() - started
        log_file = home / "dags-test.log"
        log_file.write_text(result.stdout + result.stderr)
        after = state(url)
        ok = result.returncode == 0 and "state=success" in (result.stdout + result.stderr).replace(
            "DagRunState.SUCCESS", "state=success"
        )
        print(f"\nDAG {args.dag_id}: {'success' if ok else 'FAILED'} in {elapsed:.1f} s. In Spotfire:")
        for line in report(before, after):
            print(line)
        if not ok:
            print(f"\nThe DAG run failed; its output is in {log_file}. Last lines:")
            print("\n".join((result.stdout + result.stderr).splitlines()[-25:]))
            args.keep_home = True
        return 0 if ok else 1
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
