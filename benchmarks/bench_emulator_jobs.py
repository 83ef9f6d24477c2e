"""Benchmark: emulator CPU per Automation Services request with 5,000 concurrent jobs vs 50.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_emulator_jobs.py
    .venv/bin/python benchmarks/bench_emulator_jobs.py --large 5000 --small 50 --polls 1000 --rounds 5
    # the same against another checkout of the emulator (e.g. the code before a change):
    .venv/bin/python benchmarks/bench_emulator_jobs.py --emulator-path /tmp/emulator-base

What it does, in one run:

1. starts two emulators, each in its own process, with ``as_max_concurrent_jobs`` above the larger job
   count and jobs that stay ``InProgress`` for an hour;
2. fills one with ``--small`` jobs and the other with ``--large`` jobs; the CPU time (user+sys, read with
   psutil) of each emulator process over ``--tail`` starts at that level (``--start-reps`` rounds,
   alternating between the two, each round's jobs aborted again) gives the CPU per start request;
3. then, ``--rounds`` times, alternating between the two emulators so that the load of the machine
   hits both alike, sends ``--polls`` status requests (round-robin over the jobs) and records the
   emulator's CPU per status request;
4. reports the medians and the large/small ratio (1.0 = the job count costs nothing per request), and
   the emulator's RSS.

Only the emulator process is measured (the client's CPU is not counted). Results are printed as a
Markdown table and written to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
AS_JOB = "/spotfire/api/rest/as/job"
MODULE = "airflow_provider_spotfire.emulator"
JOB_XML = b'<?xml version="1.0"?><as:Job xmlns:as="urn:bench"/>'


class Emulator:
    """One emulator process and an authenticated client for it."""

    def __init__(self, max_jobs: int, emulator_path: str | None) -> None:
        cfg = Path(tempfile.mkdtemp(prefix="bench-emu-")) / "emulator.json"
        cfg.write_text(
            json.dumps({"as_max_concurrent_jobs": max_jobs, "as_queue_seconds": 0, "as_run_seconds": 3600})
        )
        env = dict(os.environ)
        flags = []
        if emulator_path:
            # -S: no site processing, so the editable install of this checkout is not on the path
            flags = ["-S"]
            site_dirs = [p for p in sys.path if p.endswith("site-packages")]
            env["PYTHONPATH"] = os.pathsep.join([emulator_path, *site_dirs])
        self.proc = subprocess.Popen(
            [sys.executable, *flags, "-m", MODULE, "--port", "0", "--config", str(cfg)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=emulator_path,  # ``-m`` puts the working directory first on sys.path
        )
        self.url = self._read_url()
        self.ps = psutil.Process(self.proc.pid)
        token = httpx.post(
            f"{self.url}/spotfire/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("airflow", "airflow-secret"),
        ).json()["access_token"]
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.job_ids: list[str] = []

    def _read_url(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"Listening on (\S+)", line)
            if m:
                return m.group(1)
        self.stop()
        raise SystemExit("the emulator did not start")

    def cpu(self) -> float:
        """CPU seconds (user+sys) of the emulator process so far."""
        t = self.ps.cpu_times()
        return t.user + t.system

    def start_jobs(self, n: int) -> None:
        """Start ``n`` jobs; every one must be accepted (not Busy)."""
        for _ in range(n):
            resp = self.client.post(
                f"{AS_JOB}/start-content", content=JOB_XML, headers={"Content-Type": "application/xml"}
            )
            body = resp.json()
            if body["StatusCode"] != "InProgress":
                raise SystemExit(f"start answered {body['StatusCode']} after {len(self.job_ids)} jobs")
            self.job_ids.append(body["JobId"])

    def poll(self, n: int, offset: int) -> None:
        """``n`` status requests, round-robin over the jobs."""
        ids = self.job_ids
        for i in range(n):
            resp = self.client.get(f"{AS_JOB}/status/{ids[(offset + i * 7919) % len(ids)]}")
            resp.raise_for_status()

    def stop(self) -> None:
        """Stop the emulator process (SIGTERM, then wait)."""
        if getattr(self, "client", None) is not None:
            self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _start_round(emu: Emulator, tail: int, keep: bool) -> float:
    """CPU seconds of ``tail`` starts; unless ``keep``, the jobs are aborted again afterwards (unmeasured)."""
    before = emu.cpu()
    emu.start_jobs(tail)
    cpu = emu.cpu() - before
    if not keep:
        for job_id in emu.job_ids[-tail:]:
            emu.client.post(f"{AS_JOB}/abort/{job_id}").raise_for_status()
        del emu.job_ids[-tail:]
    return cpu


def measure_starts(
    small: Emulator, large: Emulator, sizes: tuple[int, int], tail: int, reps: int
) -> dict[str, float]:
    """CPU ms per start with ``size - tail`` jobs running, ``reps`` alternating rounds per emulator.

    Both emulators are first filled to ``size - tail`` jobs (unmeasured); every round then times ``tail``
    starts and aborts them again, so all measured starts see the same number of running jobs. The last
    round keeps its jobs, leaving ``size`` running.
    """
    small.start_jobs(sizes[0] - tail)
    large.start_jobs(sizes[1] - tail)
    cpu = {"small": 0.0, "large": 0.0}
    for rep in range(reps):
        order = [("small", small), ("large", large)] if rep % 2 == 0 else [("large", large), ("small", small)]
        for name, emu in order:
            cpu[name] += _start_round(emu, tail, keep=rep == reps - 1)
    return {name: total / (tail * reps) * 1000 for name, total in cpu.items()}


def measure_polls(small: Emulator, large: Emulator, polls: int, rounds: int) -> dict[str, list[float]]:
    """CPU ms per status request, ``rounds`` alternating rounds per emulator."""
    out: dict[str, list[float]] = {"small": [], "large": []}
    small.poll(100, 0)  # warm-up (imports, connection)
    large.poll(100, 0)
    for r in range(rounds):
        order = [("small", small), ("large", large)] if r % 2 == 0 else [("large", large), ("small", small)]
        for name, emu in order:
            before = emu.cpu()
            emu.poll(polls, r)
            out[name].append((emu.cpu() - before) / polls * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=50, help="jobs on the baseline emulator (50)")
    p.add_argument("--large", type=int, default=5000, help="jobs on the measured emulator (5000)")
    p.add_argument("--tail", type=int, default=50, help="starts measured at the end of each ramp (50)")
    p.add_argument("--start-reps", type=int, default=10, help="repetitions of the measured starts (10)")
    p.add_argument("--polls", type=int, default=1000, help="status requests per round (1000)")
    p.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds (5)")
    p.add_argument("--emulator-path", help="PYTHONPATH entry with another airflow_provider_spotfire")
    args = p.parse_args(argv)
    tail = min(args.tail, args.small)
    small = Emulator(args.large + 100, args.emulator_path)
    large = Emulator(args.large + 100, args.emulator_path)
    try:
        t0 = time.monotonic()
        starts = measure_starts(small, large, (args.small, args.large), tail, args.start_reps)
        start_small, start_large = starts["small"], starts["large"]
        polls = measure_polls(small, large, args.polls, args.rounds)
        rss = {"small": small.ps.memory_info().rss / 2**20, "large": large.ps.memory_info().rss / 2**20}
        wall = time.monotonic() - t0
    finally:
        small.stop()
        large.stop()
    med = {k: statistics.median(v) for k, v in polls.items()}
    result: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "python": platform.python_version(),
        "loadavg_1m": os.getloadavg()[0],
        "args": vars(args),
        "cpu_ms_per_start": {"small": start_small, "large": start_large},
        "cpu_ms_per_status": polls,
        "median_cpu_ms_per_status": med,
        "rss_mb": rss,
        "wall_s": wall,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"emulator_jobs_{result['when']}.json").write_text(json.dumps(result, indent=2))
    n_s, n_l = args.small, args.large
    print(f"| metric | {n_s} jobs | {n_l:,} jobs | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| CPU ms per status request (median of {args.rounds}) | {med['small']:.3f} | {med['large']:.3f} "
        f"| {med['large'] / med['small']:.2f}x |"
    )
    print(
        f"| CPU ms per start (last {tail} starts) | {start_small:.3f} | {start_large:.3f} "
        f"| {start_large / start_small:.2f}x |"
    )
    print(f"| emulator RSS (MB) | {rss['small']:.1f} | {rss['large']:.1f} | |")
    print(f"\nload average (1 min) at the end: {result['loadavg_1m']:.2f}; wall time {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
