"""Benchmark: what running every call as a sans-IO flow costs, next to a real HTTP call.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_call_flow.py              # 20,000 calls a side, 5 rounds
    .venv/bin/python benchmarks/bench_call_flow.py --calls 5000 --rounds 3

Three sides, CPU time of this process (``time.process_time``), median of the rounds:

* ``direct`` -- the call loop written out as plain code (what ``SpotfireHookBase.call`` was before
  the flows): build the ``HttpRequest``, "send" it to a stub that answers at once, parse;
* ``flow`` -- the same call through ``operation_flow`` -> ``call_flow`` -> ``drive`` with the same
  stub: what the flows add per call;
* ``http`` -- ``SpotfireHook.call`` of the same request against the emulator running in another
  process (so its CPU is not counted): what one real call costs the client.

The stub answers ``FetchToken`` with a token and ``Send`` with a ready ``HttpResponse``; parsing
is the license API's (a small JSON array). Printed: microseconds of CPU per call, and the
overhead of the flow relative to ``direct`` and to a real call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire._tokens import Token
from airflow_provider_spotfire.api.licenses import build_list_licenses
from airflow_provider_spotfire.hooks.flow import FetchToken, Send, drive, operation_flow, single_call

CONFIG = SpotfireConnectionConfig.from_connection(
    type("Conn", (), {"conn_id": "b", "host": "https://sf.example.com", "login": "c", "password": "s"})()
)
TOKEN = Token(access_token="t", scopes=frozenset({"api.licenses.read"}), expires_at=1e12, lifetime=3600.0)
BODY = json.dumps([{"name": "Spotfire.Dxp.WebPlayer", "displayName": "Consumer", "licenseFunctions": []}])
RESPONSE = HttpResponse(200, {}, BODY.encode())


def perform(step: Any) -> Any:
    if isinstance(step, FetchToken):
        return TOKEN
    if isinstance(step, Send):
        return RESPONSE
    return None


def direct_call() -> Any:
    request = build_list_licenses()
    token = perform(FetchToken(request.scopes[0]))
    response = perform(Send(request.to_http(CONFIG, token.access_token), request.idempotent))
    return request.parse(response)


def flow_call() -> Any:
    return drive(operation_flow(single_call(build_list_licenses()), CONFIG, {}), perform)


def cpu_per_call(fn: Any, calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_spotfire.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("export AIRFLOW_CONN_SPOTFIRE_DEFAULT="):
            return proc, line.split("=", 1)[1].strip().strip("'")
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the emulator did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--http-calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    proc, conn = start_emulator()
    try:
        os.environ["AIRFLOW_CONN_SPOTFIRE_DEFAULT"] = conn
        from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

        hook = SpotfireHook()
        hook.call(build_list_licenses())  # warm: token and connection pool
        results: dict[str, list[float]] = {"direct": [], "flow": [], "http": []}
        for _ in range(args.rounds):
            results["direct"].append(cpu_per_call(direct_call, args.calls))
            results["flow"].append(cpu_per_call(flow_call, args.calls))
            results["http"].append(cpu_per_call(lambda: hook.call(build_list_licenses()), args.http_calls))
        hook.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    median = {side: statistics.median(values) for side, values in results.items()}
    overhead = median["flow"] - median["direct"]
    print("| side | CPU µs per call (median of rounds) |\n|---|---|")
    for side, value in median.items():
        print(f"| {side} | {value:.1f} |")
    print(
        f"\nflow / direct = {median['flow'] / median['direct']:.2f}; the flow adds {overhead:.1f} µs "
        f"per call = {overhead / median['http'] * 100:.1f}% of a real call's client CPU"
    )


if __name__ == "__main__":
    main()
