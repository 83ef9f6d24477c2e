"""Benchmark: 1,000 Automation Services jobs waited for by triggers in one asyncio loop vs by threads.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_automation_triggers.py            # 1,000 jobs of 10-60 s
    .venv/bin/python benchmarks/bench_automation_triggers.py --jobs 100 --min-duration 2 --max-duration 5

What it does, in one run:

1. starts the Spotfire Server emulator in its own process, with ``as_max_concurrent_jobs`` raised
   above the number of jobs (the default of 20 would answer Busy);
2. for each side, starts N fresh jobs from job XML whose emulator processing instruction gives each
   job its own duration (evenly spread over ``--min-duration``..``--max-duration`` seconds), then runs
   the side in a fresh subprocess that waits for all of them:

   * ``triggers`` -- N :class:`SpotfireAutomationJobTrigger` in one asyncio loop, as the triggerer
     runs them (connection from ``AIRFLOW_CONN_SPOTFIRE_DEFAULT``), on the shipped aiohttp
     transport, polling every ``--poll-interval`` seconds;
   * ``triggers-adaptive`` -- the same with a growing :class:`PollSchedule` (``--adaptive-fraction``
     of the job's age, capped at ``--adaptive-cap``);
   * ``triggers-httpx`` -- the same triggers on an httpx ``AsyncClient`` transport (the candidate
     aiohttp was measured against; defined here, not shipped);
   * ``threads`` -- N threads, each with its own ``requests.Session`` that gets a token and polls
     the status endpoint with blocking sleeps (how standalone Spotfire REST clients wait);

3. records per side: CPU seconds (user+sys of the subprocess while waiting) per 1,000 polls and
   per job waited, polls per job, peak RSS and its growth over the RSS before waiting, wall time,
   the emulator's counters of status polls and token requests, and the CPU the emulator used. Both subprocesses import the same modules (Airflow, the provider,
   httpx, requests) so that their RSS is comparable.

Results are printed as a Markdown table and written to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STATUS_PATH = "/spotfire/api/rest/as/job/status/"
SCOPE = "api.rest.automation-services-job.execute"


# ------------------------------------------------------------------------------------------ child side


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _usage() -> tuple[float, float]:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024  # Linux: ru_maxrss in KiB


def _import_everything() -> None:
    """Same imports on both sides, so baseline RSS is the same."""
    import httpx  # noqa: F401
    import requests  # noqa: F401

    import airflow_provider_spotfire.hooks.spotfire
    import airflow_provider_spotfire.triggers.automation  # noqa: F401


def _use_httpx_transport() -> None:
    """Swap the hooks' async transport for an httpx one (the candidate measured against aiohttp)."""
    import httpx

    from airflow_provider_spotfire._http import HttpResponse, _check_status, transport_error
    from airflow_provider_spotfire.hooks import base

    clients: dict[Any, httpx.AsyncClient] = {}

    def client(verify: Any, timeout: float) -> httpx.AsyncClient:
        if (verify, timeout) not in clients:
            clients[verify, timeout] = httpx.AsyncClient(
                verify=verify,
                timeout=timeout,
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
                follow_redirects=False,
            )
        return clients[verify, timeout]

    class HttpxTransport(base.AsyncTransport):
        async def send_once(self, req: Any) -> Any:
            try:
                r = await self.client.request(
                    req.method,
                    req.url,
                    params=dict(req.params) if req.params else None,
                    headers=dict(req.headers),
                    json=req.json,
                    content=req.content if req.content is not None else req.form,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise transport_error(req.method, req.path, exc, sent=False) from None
            except httpx.TransportError as exc:
                raise transport_error(req.method, req.path, exc, sent=True) from None
            return _check_status(req, HttpResponse(r.status_code, r.headers, r.content), self.client_id)

    base.shared_async_client = client  # type: ignore[assignment]
    base.AsyncTransport = HttpxTransport  # type: ignore[misc]


def child_triggers(job_ids: list[str], poll_interval: float | dict[str, Any]) -> dict[str, Any]:
    """Wait for every job with one SpotfireAutomationJobTrigger each, all in one event loop."""
    import asyncio

    from airflow_provider_spotfire.triggers.automation import SpotfireAutomationJobTrigger

    outcomes: dict[str, int] = {}

    async def wait(job_id: str) -> None:
        trigger = SpotfireAutomationJobTrigger(job_id=job_id, poll_interval=poll_interval)
        async for event in trigger.run():
            state = str(event.payload.get("remote_state"))
            outcomes[state] = outcomes.get(state, 0) + 1
            break

    async def main() -> None:
        await asyncio.gather(*(wait(j) for j in job_ids))

    asyncio.run(main())
    return outcomes


def child_threads(
    job_ids: list[str], poll_interval: float, server_url: str, client: tuple[str, str]
) -> dict[str, Any]:
    """Wait for every job in its own thread with its own requests session (blocking polling)."""
    import threading

    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def wait(job_id: str) -> None:
        session = requests.Session()
        token = session.post(
            f"{server_url}/spotfire/oauth2/token",
            auth=client,
            data={"grant_type": "client_credentials", "scope": SCOPE},
            timeout=60,
        ).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        while True:
            response = session.get(f"{server_url}{STATUS_PATH}{job_id}", timeout=60)
            response.raise_for_status()
            code = response.json()["StatusCode"]
            if code not in ("Queued", "InProgress"):
                break
            time.sleep(poll_interval)
        session.close()
        with lock:
            outcomes[code] = outcomes.get(code, 0) + 1

    threads = [threading.Thread(target=wait, args=(j,), daemon=True) for j in job_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def run_child(args: argparse.Namespace) -> None:
    """Entry point of a side's subprocess: import, say READY, wait for the job list, measure, report."""
    _import_everything()
    job_file = Path(args.job_file)
    print("READY", flush=True)
    while not job_file.exists():  # the parent starts the jobs only now, so none is over already
        time.sleep(0.01)
    job_ids = json.loads(job_file.read_text())
    cpu0, _ = _usage()
    rss0 = _rss_mb()
    t0 = time.monotonic()
    if args.child == "triggers-httpx":
        _use_httpx_transport()
    if args.child.startswith("triggers"):
        outcomes = child_triggers(job_ids, schedule_of(args, args.child))
    else:
        conn = json.loads(os.environ["AIRFLOW_CONN_SPOTFIRE_DEFAULT"])
        outcomes = child_threads(
            job_ids, args.poll_interval, args.server_url, (conn["login"], conn["password"])
        )
    wall = time.monotonic() - t0
    cpu1, peak = _usage()
    result = {
        "side": args.child,
        "cpu_seconds": cpu1 - cpu0,
        "rss_before_mb": rss0,
        "peak_rss_mb": peak,
        "wall_seconds": wall,
        "outcomes": outcomes,
    }
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ parent side


def schedule_of(args: argparse.Namespace, side: str) -> float | dict[str, Any]:
    """The side's poll_interval kwarg: the fixed interval, or the adaptive PollSchedule's dict."""
    if side != "triggers-adaptive":
        return args.poll_interval
    from airflow_provider_spotfire.triggers.schedule import PollSchedule

    return PollSchedule.adaptive(
        args.poll_interval, max_interval=args.adaptive_cap, age_fraction=args.adaptive_fraction
    ).to_dict()


def start_emulator(max_jobs: int) -> tuple[subprocess.Popen[str], str, str]:
    """The emulator in its own process; returns (process, base URL, connection JSON)."""
    cfg = Path(tempfile.mkdtemp(prefix="bench-as-")) / "emulator.json"
    cfg.write_text(json.dumps({"as_max_concurrent_jobs": max_jobs * 2, "request_log_size": 100}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_spotfire.emulator", "--port", "0", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = conn = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (url is None or conn is None):
        line = proc.stdout.readline()
        if not line:
            break
        if m := re.match(r"Listening on (\S+)", line):
            url = m.group(1)
        if m := re.match(r"export AIRFLOW_CONN_SPOTFIRE_DEFAULT='(.*)'", line.strip()):
            conn = m.group(1)
    if url is None or conn is None:
        proc.terminate()
        raise SystemExit("the emulator did not start")
    return proc, url, conn


def job_definition(duration: float) -> str:
    from airflow_provider_spotfire.emulator.seed import job_xml

    return job_xml("/Airflow/Reports/Sales", f'queue="0" duration="{duration:.2f}" outcome="Finished"')


def start_jobs(url: str, conn: dict[str, Any], n: int, lo: float, hi: float) -> list[str]:
    """Start n jobs with durations spread evenly over [lo, hi] seconds."""
    session = requests.Session()
    token = session.post(
        f"{url}/spotfire/oauth2/token",
        auth=(conn["login"], conn["password"]),
        data={"grant_type": "client_credentials", "scope": SCOPE},
        timeout=60,
    ).json()["access_token"]
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/xml"})
    ids = []
    for i in range(n):
        duration = lo + (hi - lo) * (i / max(n - 1, 1))
        r = session.post(
            f"{url}/spotfire/api/rest/as/job/start-content", data=job_definition(duration).encode()
        )
        r.raise_for_status()
        body = r.json()
        assert body["StatusCode"] in ("Queued", "InProgress"), body
        ids.append(body["JobId"])
    return ids


def _cpu_of(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def counters(url: str) -> dict[str, Any]:
    state = requests.get(f"{url}/_emulator/state", timeout=60).json()
    c = state["counters"]
    return {
        "api_requests": c.get("api_requests", 0),
        "token_requests": sum((c.get("token_requests") or {}).values()),
    }


def run_side(
    side: str, args: argparse.Namespace, url: str, conn_json: str, emulator_pid: int
) -> dict[str, Any]:
    """Start the side's subprocess, then its jobs; collect its report and the emulator's counters."""
    conn = json.loads(conn_json)
    workdir = Path(tempfile.mkdtemp(prefix="bench-as-"))
    job_file = workdir / "jobs.json"
    env = {
        **os.environ,
        "AIRFLOW_CONN_SPOTFIRE_DEFAULT": conn_json,
        "AIRFLOW_HOME": str(workdir),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{workdir}/airflow.db",
    }
    cmd = [sys.executable, __file__, "--child", side, "--job-file", str(job_file)]
    cmd += ["--poll-interval", str(args.poll_interval), "--server-url", url]
    cmd += ["--adaptive-cap", str(args.adaptive_cap), "--adaptive-fraction", str(args.adaptive_fraction)]
    log_path = workdir / "child.log"
    with open(log_path, "w+") as log:
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        assert child.stdout is not None
        while (line := child.stdout.readline()) and line.strip() != "READY":
            pass
        job_ids = start_jobs(url, conn, args.jobs, args.min_duration, args.max_duration)
        before = counters(url)
        emulator_cpu = _cpu_of(emulator_pid)
        tmp = job_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(job_ids))
        tmp.rename(job_file)
        result: dict[str, Any] | None = None
        for line in child.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
        child.wait()
        if child.returncode != 0 or result is None:
            log.seek(0)
            raise SystemExit(f"the {side} side failed:\n{log.read()[-4000:]}")
    after = counters(url)
    polls = after["api_requests"] - before["api_requests"]
    result.update(
        emulator_cpu_seconds=_cpu_of(emulator_pid) - emulator_cpu,
        polls_per_job=polls / args.jobs,
        cpu_ms_per_job=result["cpu_seconds"] / args.jobs * 1000,
        polls=polls,
        token_requests=after["token_requests"] - before["token_requests"],
        cpu_seconds_per_1000_polls=result["cpu_seconds"] / polls * 1000 if polls else float("nan"),
        rss_growth_mb=result["peak_rss_mb"] - result["rss_before_mb"],
    )
    return result


SIDES = ("threads", "triggers", "triggers-adaptive", "triggers-httpx")
RATIO_KEYS = ("cpu_seconds_per_1000_polls", "cpu_ms_per_job")


def markdown(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    th = results.get("threads")
    rows = [
        ("CPU ms per status poll", "cpu_seconds_per_1000_polls", "{:.3f}"),
        ("CPU ms per job waited", "cpu_ms_per_job", "{:.1f}"),
        ("status polls per job", "polls_per_job", "{:.2f}"),
        ("CPU seconds (total)", "cpu_seconds", "{:.2f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:.1f}"),
        ("RSS growth while waiting (MB)", "rss_growth_mb", "{:.1f}"),
        ("token requests", "token_requests", "{:d}"),
        ("emulator CPU seconds", "emulator_cpu_seconds", "{:.2f}"),
        ("wall time (s)", "wall_seconds", "{:.1f}"),
    ]
    sides = [s for s in SIDES if s in results]
    lines = [
        f"{args.jobs} jobs of {args.min_duration:g}-{args.max_duration:g} s, poll interval "
        f"{args.poll_interval:g} s; adaptive: {args.adaptive_fraction:g} x job age, cap "
        f"{args.adaptive_cap:g} s. Ratios (x) against threads + requests.",
        "",
        "| metric | " + " | ".join(sides) + " |",
        "|---|" + "---:|" * len(sides),
    ]
    for label, key, fmt in rows:
        cells = []
        for side in sides:
            value = results[side][key]
            cell = fmt.format(value)
            if th and side != "threads" and th[key] and key in RATIO_KEYS:
                cell += f" ({value / th[key]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| outcomes | " + " | ".join(str(results[s]["outcomes"]) for s in sides) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--min-duration", type=float, default=10.0)
    p.add_argument("--max-duration", type=float, default=60.0)
    p.add_argument("--poll-interval", type=float, default=5.0)
    p.add_argument("--adaptive-fraction", type=float, default=0.25)
    p.add_argument("--adaptive-cap", type=float, default=60.0)
    p.add_argument("--sides", default=",".join(SIDES), help="comma-separated subset of " + ", ".join(SIDES))
    p.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--job-file", help=argparse.SUPPRESS)
    p.add_argument("--server-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        run_child(args)
        return

    load_before = os.getloadavg()
    proc, url, conn_json = start_emulator(args.jobs)
    try:
        sides = [s for s in args.sides.split(",") if s]
        results = {side: run_side(side, args, url, conn_json, proc.pid) for side in sides}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    table = markdown(results, args)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "benchmark": "bench_automation_triggers",
        "when": stamp,
        "args": {
            k: v
            for k, v in vars(args).items()
            if k
            in ("jobs", "min_duration", "max_duration", "poll_interval", "adaptive_fraction", "adaptive_cap")
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "results": results,
        "table": table,
    }
    out = RESULTS / f"automation_triggers_{stamp}.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
