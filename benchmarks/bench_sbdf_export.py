"""Benchmark: ``write_sbdf`` vs calling ``spotfire.sbdf.export_data`` directly.

Run: ``.venv/bin/python benchmarks/bench_sbdf_export.py [--rows 1000000] [--repeat 5]``

For each case a 6-column frame (int64, float64, str object, bool, naive datetime64 and one column
that needs conversion) is written with ``write_sbdf``; the baseline writes an *equivalent,
already-compatible* frame (the converted column pre-converted outside the timing) with
``spotfire.sbdf.export_data``. Both must produce byte-identical files. Repetitions alternate the
order (AB, BA, ...). Prints a markdown table and writes it to ``benchmarks/results/sbdf_export_<case>.md``.
Goal: median(write_sbdf) / median(export_data) ≤ 1.15.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from spotfire import sbdf as spotfire_sbdf

from airflow_provider_spotfire.sbdf import prepare_dataframe, write_sbdf

GOAL = 1.15
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def base_columns(rows: int, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "ms")
    return {
        "id": np.arange(rows, dtype="int64"),
        "value": rng.normal(size=rows),
        "label": np.array([f"item-{i % 5000}" for i in range(rows)], dtype=object),
        "flag": rng.random(rows) < 0.5,
        # whole milliseconds: neither side has sub-ms work to do
        "naive_ts": (start + rng.integers(0, 365 * 86_400_000, rows).astype("timedelta64[ms]")).astype(
            "datetime64[ns]"
        ),
    }


def make_case(case: str, rows: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(frame needing conversion, equivalent compatible frame, description of the converted column)."""
    cols = base_columns(rows)
    rng = np.random.default_rng(1)
    if case == "int16":
        small = rng.integers(-30_000, 30_000, rows).astype("int16")
        needs = pd.DataFrame({**cols, "small": small})
        ready = pd.DataFrame({**cols, "small": small.astype("int32")})
        return needs, ready, "int16 → int32"
    if case == "tz":
        utc = pd.Series(cols["naive_ts"]).dt.tz_localize("UTC") + pd.Timedelta(hours=1)
        needs = pd.DataFrame({**cols, "aware_ts": utc.dt.tz_convert("Europe/Stockholm")})
        ready = pd.DataFrame({**cols, "aware_ts": utc.dt.tz_localize(None)})
        return needs, ready, "datetime64[ns, Europe/Stockholm] → naive UTC"
    raise SystemExit(f"unknown case {case!r}")


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_case(case: str, rows: int, repeat: int, workdir: str) -> dict[str, object]:
    needs, ready, what = make_case(case, rows)
    ours_path = os.path.join(workdir, f"{case}-write_sbdf.sbdf")
    base_path = os.path.join(workdir, f"{case}-export_data.sbdf")

    def ours() -> None:
        write_sbdf(needs, ours_path)

    def baseline() -> None:
        spotfire_sbdf.export_data(ready, base_path)

    ours_times: list[tuple[float, float]] = []
    base_times: list[tuple[float, float]] = []
    for rep in range(repeat):
        order = [(ours, ours_times), (baseline, base_times)]
        if rep % 2:
            order.reverse()
        for fn, bucket in order:
            bucket.append(timed(fn))
        print(
            f"  {case} rep {rep + 1}/{repeat}: write_sbdf {ours_times[-1][0]:.3f}s "
            f"(cpu {ours_times[-1][1]:.3f}s), export_data {base_times[-1][0]:.3f}s "
            f"(cpu {base_times[-1][1]:.3f}s)",
            file=sys.stderr,
        )
    if digest(ours_path) != digest(base_path):
        raise SystemExit(f"{case}: write_sbdf and export_data wrote different files")
    prep = [timed(lambda: prepare_dataframe(needs))[0] for _ in range(repeat)]

    def med(times: list[tuple[float, float]], i: int) -> float:
        return statistics.median(t[i] for t in times)

    return {
        "case": case,
        "what": what,
        "ours": med(ours_times, 0),
        "base": med(base_times, 0),
        "ratio": med(ours_times, 0) / med(base_times, 0),
        "ours_cpu": med(ours_times, 1),
        "base_cpu": med(base_times, 1),
        "ratio_cpu": med(ours_times, 1) / med(base_times, 1),
        "prep": statistics.median(prep),
        "ours_min": min(t[0] for t in ours_times),
        "base_min": min(t[0] for t in base_times),
        "bytes": os.path.getsize(ours_path),
    }


def render(results: list[dict[str, object]], rows: int, repeat: int) -> str:
    lines = [
        "# SBDF export benchmark",
        "",
        f"{rows:,} rows x 6 columns (int64, float64, str object, bool, naive datetime64, + the converted "
        f"column); median of {repeat} alternating repetitions; baseline = `spotfire.sbdf.export_data` on "
        "an equivalent already-compatible frame (byte-identical output checked). CPU time "
        "(`time.process_time`) is shown as a cross-check that is less sensitive to other load on the machine.",
        "",
        "| converted column | write_sbdf median (s) | export_data median (s) | ratio wall (goal ≤ "
        f"{GOAL:.2f}) | ratio CPU time | prepare_dataframe alone (s) | min write_sbdf / export_data (s) "
        "| file size |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        verdict = "✅" if float(r["ratio"]) <= GOAL else "❌"  # type: ignore[arg-type]
        lines.append(
            f"| {r['what']} | {r['ours']:.3f} | {r['base']:.3f} | {r['ratio']:.3f} {verdict} | "
            f"{r['ratio_cpu']:.3f} ({r['ours_cpu']:.2f} / {r['base_cpu']:.2f} s) | {r['prep']:.3f} | "
            f"{r['ours_min']:.3f} / {r['base_min']:.3f} | "
            f"{int(r['bytes']) / 1e6:.1f} MB |"  # type: ignore[call-overload]
        )
    lines += [
        "",
        f"Environment: Python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"spotfire {version('spotfire')}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--case", choices=["int16", "tz"], action="append")
    parser.add_argument("--no-save", action="store_true", help="print only; do not write the results file")
    args = parser.parse_args()
    cases = args.case or ["int16", "tz"]
    with tempfile.TemporaryDirectory(prefix="bench-sbdf-") as workdir:
        results = [run_case(case, args.rows, args.repeat, workdir) for case in cases]
    table = render(results, args.rows, args.repeat)
    print(table)
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        target = RESULTS_DIR / f"sbdf_export_{'_'.join(cases)}.md"
        target.write_text(table, encoding="utf-8")
        print(f"written to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
