"""Benchmark: token requests per 100 parallel task processes on one refresh-token connection.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_tokens.py                 # 100 processes, 2 waves
    .venv/bin/python benchmarks/bench_tokens.py --processes 50

What it does, in one run, for each side:

* ``before`` -- the ``TokenManager`` of commit 0fd41ad (loaded from git), each process refreshing on
  its own and persisting a rotated refresh token through a store of the old protocol;
* ``after`` -- today's ``TokenManager`` with the shared grant and lease (default timings).

Each side gets a fresh sign-in (a new refresh-token grant at the emulator, rotation on, reuse
detection on when the emulator offers it) and a fresh file-backed store (whole writes, last writer
wins: what Airflow Variables offer). Then two waves of N processes, forked from this process (as
Airflow's supervisor forks tasks) and released at the same moment: each gets a token and makes one
API call. Wave 1 starts cold; wave 2 starts right after wave 1, while its access token is still valid.
Recorded per wave: token requests seen by the emulator, failed processes, wall time, CPU seconds
of the processes. Results are printed as Markdown and written to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
BASELINE_COMMIT = "0fd41ad"
SCOPE = "api.licenses.read"
CLIENT, SECRET = "web-client", "web-client-secret"


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    """The emulator in its own process; returns (process, base URL)."""
    cfg = Path(tempfile.mkdtemp(prefix="bench-tokens-")) / "emulator.json"
    cfg.write_text(json.dumps({"request_log_size": 100, "rotate_refresh_tokens": True}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_spotfire.emulator", "--port", "0", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if m := re.match(r"Listening on (\S+)", line):
            return proc, m.group(1)
    proc.terminate()
    raise SystemExit("the emulator did not start")


def sign_in(url: str) -> str:
    """A new refresh-token grant for the web client (the emulator auto-approves the user)."""
    clients = httpx.get(f"{url}/_emulator/clients", timeout=30).json()
    client = next(c for c in clients if c["client_id"] == CLIENT)
    redirect = (client.get("redirect_uris") or ["https://airflow.example.com/spotfire/callback"])[0]
    r = httpx.get(
        f"{url}/spotfire/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": CLIENT,
            "redirect_uri": redirect,
            "scope": f"{SCOPE} offline",
        },
        timeout=30,
    )
    code = httpx.URL(r.headers["location"]).params["code"]
    t = httpx.post(
        f"{url}/spotfire/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=(CLIENT, SECRET),
        timeout=30,
    )
    t.raise_for_status()
    return str(t.json()["refresh_token"])


def load_baseline_tokens_module() -> Any:
    """``airflow_provider_spotfire/_tokens.py`` as it was at the baseline commit."""
    source = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:airflow_provider_spotfire/_tokens.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-tokens-old-")) / "baseline_tokens.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_tokens", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_tokens"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class BaselineFileStore:
    """The old store protocol (a bare rotated refresh token) in one file, last writer wins."""

    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / "refresh_token"

    def load(self, config: Any) -> str | None:
        try:
            return self.path.read_text() or None
        except FileNotFoundError:
            return None

    def save(self, config: Any, refresh_token: str) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}")
        tmp.write_text(refresh_token)
        os.replace(tmp, self.path)


def task_process(side: str, url: str, refresh_token: str, store_dir: str, go: Any, results: Any) -> None:
    """One task: a token and one API call, once every process of the wave has started."""
    from airflow_provider_spotfire._connection import SpotfireConnectionConfig
    from airflow_provider_spotfire._http import HttpRequest, RetryPolicy, SyncTransport

    config = SpotfireConnectionConfig(
        conn_id="sf_bench",
        base_url=url,
        context_path="/spotfire",
        client_id=CLIENT,
        client_secret=SECRET,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )
    if side == "before":
        manager = BASELINE.TokenManager(config, BaselineFileStore(store_dir))
    else:
        from airflow_provider_spotfire.oauth import TokenManager
        from tests.oauth.file_store import FileRefreshTokenStore

        manager = TokenManager(config, FileRefreshTokenStore(store_dir))
    transport = SyncTransport(verify=True, timeout=60, policy=RetryPolicy(), client_id=CLIENT)
    go.wait()
    try:
        token = manager.get_token(transport, (SCOPE,))
        api = HttpRequest(
            "GET",
            f"{config.api_url}/rest/licenses/v1/",
            headers={"Authorization": f"Bearer {token.access_token}"},
        )
        transport.send(api, idempotent=True)
        results.put(("ok", manager.token_requests))
    except Exception as exc:
        results.put((f"{type(exc).__name__}: {getattr(exc, 'code', '')}", manager.token_requests))


def token_requests(url: str) -> int:
    return int(
        httpx.get(f"{url}/_emulator/state", timeout=60).json()["counters"]["token_requests"].get(CLIENT, 0)
    )


def run_wave(side: str, url: str, refresh_token: str, store_dir: str, n: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=task_process, args=(side, url, refresh_token, store_dir, go, results))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    before_requests = token_requests(url)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    go.set()
    outcomes = [results.get(timeout=600) for _ in procs]
    wall = time.monotonic() - started
    for p in procs:
        p.join(30)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    failures = [o for o, _ in outcomes if o != "ok"]
    return {
        "token_requests": token_requests(url) - before_requests,
        "failed": len(failures),
        "failure_kinds": sorted(set(failures)),
        "wall_s": round(wall, 2),
        "cpu_s": round((cpu.ru_utime + cpu.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=100)
    args = parser.parse_args()

    from airflow_provider_spotfire._secrets import mask

    mask("warm-up-the-secrets-masker")  # import it here, not in each forked process
    proc, url = start_emulator()
    try:
        cfg = httpx.get(f"{url}/_emulator/config", timeout=30).json()
        reuse = "refresh_token_reuse_detection" in cfg
        if reuse:
            httpx.patch(f"{url}/_emulator/config", json={"refresh_token_reuse_detection": True}, timeout=30)
        rows = []
        for side in ("before", "after"):
            refresh_token = sign_in(url)
            store_dir = tempfile.mkdtemp(prefix=f"bench-tokens-{side}-")
            for wave in (1, 2):
                row = {
                    "side": side,
                    "wave": wave,
                    **run_wave(side, url, refresh_token, store_dir, args.processes),
                }
                rows.append(row)
                print(row, flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    report(rows, args.processes, reuse)


def report(rows: list[dict[str, Any]], n: int, reuse: bool) -> None:
    lines = [
        f"{n} parallel processes per wave; emulator rotation on, reuse detection {'on' if reuse else 'not offered'}.",
        "",
        "| side | wave | token requests | failed processes | failure kinds | wall s | CPU s (processes) |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        kinds = ", ".join(r["failure_kinds"]) or "-"
        lines.append(
            f"| {r['side']} | {r['wave']} | {r['token_requests']} | {r['failed']} | {kinds} | {r['wall_s']} | {r['cpu_s']} |"
        )
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"tokens-{stamp}.md").write_text(text + "\n")
    (RESULTS / f"tokens-{stamp}.json").write_text(json.dumps(rows, indent=2) + "\n")


BASELINE = load_baseline_tokens_module()

if __name__ == "__main__":
    main()
