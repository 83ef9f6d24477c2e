"""Benchmark: a table produced batch by batch, streamed as SBDF into the Spotfire library.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_stream_upload.py                      # 2 M, 5 M and 20 M rows
    .venv/bin/python benchmarks/bench_stream_upload.py --rows 2000000 --repeat 3

The table has 8 columns of mixed types -- int64, float64, a low-cardinality string, a
high-cardinality string, bool, datetime, Int64 with gaps (every 5th value missing), date -- made
by a generator as ``pyarrow.RecordBatch`` es of ``--batch-rows`` rows (vectorised: producing the
data is a small part of the cost). For each row count and round, each side runs in a fresh
subprocess (so ``ru_maxrss`` is that run's peak), alternating the order:

* ``upload`` -- ``SpotfireUploadSbdfOperator(source=<generator function>).execute()``: SBDF slices
  streamed into 8 MiB chunks (Content-MD5 + Digest each), sent to the Spotfire Server emulator
  running in its own process (``poll_interval=0.2`` for the wait for ``finishedAt``); the item's sha256 in the emulator is checked against the XCom result;
* ``devnull`` -- the same generator through the same writer
  (:class:`~airflow_provider_spotfire.sbdf.SbdfByteStream`) into ``/dev/null``: the bound.

``--dataframe-rows N`` instead compares, in one process, the two ways a single pandas DataFrame
can reach the upload engine: ``temporary_sbdf`` then reading the file back in 8 MiB reads (the
old path) against iterating ``SbdfByteStream(df)`` (the path taken now); CPU time, best of 3.

Reported: rows/s by wall time and by client CPU time, ``upload`` / ``devnull`` ratios, the
emulator's CPU, and peak RSS. Results go to ``benchmarks/results/stream_upload-<stamp>.{json,md}``.
The emulator process, its item files and the work directory are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upload import _cpu, _maxrss_mib, _rss_mib, machine, proc_cpu, requests_reset, start_emulator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONN_ID = "spotfire_bench"
FOLDER = "/Airflow/Reports"
SIDES = ("upload", "devnull")
# The wait for finishedAt after the finish request polls at this interval (the default, 5 s, would
# dominate the wall time of the smaller runs).
POLL_INTERVAL = 0.2


# ------------------------------------------------------------------------------------------ child side
def record_batches(rows: int, batch_rows: int) -> Iterator[Any]:
    """``rows`` rows of the 8 mixed columns, as RecordBatches of ``batch_rows`` rows."""
    import numpy as np
    import pyarrow as pa

    regions = pa.array(["north", "south", "east", "west", "central"])
    powers = 10 ** np.arange(9, -1, -1, dtype=np.int64)
    for start in range(0, rows, batch_rows):
        ids = np.arange(start, min(rows, start + batch_rows), dtype=np.int64)
        n = len(ids)
        digits = ((ids[:, None] // powers) % 10 + ord("0")).astype(np.uint8)  # "0000012345": 10 bytes each
        codes = pa.StringArray.from_buffers(
            n, pa.py_buffer(np.arange(0, 10 * n + 1, 10, dtype=np.int32)), pa.py_buffer(digits)
        )
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(ids),
                pa.array(ids * 0.25),
                regions.take(pa.array(ids % 5)),
                codes,
                pa.array(ids % 3 == 0),
                pa.array(1_704_067_200 * 10**6 + ids * 1_000_003, type=pa.timestamp("us")),
                pa.array(ids * 7, mask=ids % 5 == 0),
                pa.array((ids % 3650).astype(np.int32), type=pa.date32()),
            ],
            names=["id", "amount", "region", "code", "flag", "at", "units", "day"],
        )


def child(side: str, rows: int, batch_rows: int, library_path: str) -> dict[str, Any]:
    """One side, one row count; returns timings and memory of this process."""
    from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
    from airflow_provider_spotfire.sbdf import SbdfByteStream

    op = SpotfireUploadSbdfOperator(
        task_id="bench",
        library_path=library_path,
        source=lambda: record_batches(rows, batch_rows),
        overwrite=True,
        deferrable=False,
        poll_interval=POLL_INTERVAL,
        spotfire_conn_id=CONN_ID,
    )
    if side == "upload":
        op.hook.get_token(("api.rest.library.upload",))  # warm: not part of the timing
    rss_before = _rss_mib()
    cpu0, started = _cpu(), time.perf_counter()
    if side == "upload":
        out = op.execute({"ti": _NoXCom()})  # type: ignore[arg-type]
        written, sha256 = out["bytes"], out["sha256"]
        assert out["rows"] == rows, out
    else:
        stream = SbdfByteStream(record_batches(rows, batch_rows))
        with open(os.devnull, "wb") as sink:
            for piece in stream:
                sink.write(piece)
        written, sha256 = stream.bytes, ""
        assert stream.rows == rows
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu0
    return {
        "side": side,
        "rows": rows,
        "bytes": written,
        "sha256": sha256,
        "seconds": seconds,
        "client_cpu_s": cpu,
        "rows_per_s": rows / seconds,
        "rows_per_cpu_s": rows / cpu,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _maxrss_mib(),
    }


class _NoXCom:
    """The part of a task instance the operator uses."""

    def xcom_push(self, key: str, value: Any) -> None:
        pass


# ----------------------------------------------------------------------------------------- parent side
def run_child(
    side: str, rows: int, batch_rows: int, library_path: str, env: dict[str, str]
) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", side, "--rows", str(rows), "--batch-rows", str(batch_rows)]
    out = subprocess.run(
        [*argv, "--library-path", library_path], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def item_sha(emulator_url: str, library_path: str) -> str:
    import requests

    items = requests.get(f"{emulator_url}/_emulator/state", timeout=60).json()["library"]["items"]
    return next(i["sha256"] for i in items if i["path"] == library_path)


def run_all(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    proc, conn = start_emulator(work)
    results: list[dict[str, Any]] = []
    try:
        url = json.loads(conn)["host"]
        env = {
            **os.environ,
            f"AIRFLOW_CONN_{CONN_ID.upper()}": conn,
            "AIRFLOW_HOME": str(work / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        for rows in (int(r) for r in args.rows.split(",")):
            for r in range(args.repeat):
                for side in SIDES if r % 2 == 0 else tuple(reversed(SIDES)):
                    library_path = f"{FOLDER}/stream-{rows}-{side}"
                    server0 = proc_cpu(proc.pid)
                    res = run_child(side, rows, args.batch_rows, library_path, env)
                    res.update(server_cpu_s=proc_cpu(proc.pid) - server0, round=r)
                    if side == "upload":
                        assert item_sha(url, library_path) == res["sha256"], "the library holds other bytes"
                    results.append(res)
                    print(
                        f"{rows:>10,} rows {side:<8} round {r}: {res['rows_per_s']:>10,.0f} rows/s wall, "
                        f"{res['rows_per_cpu_s']:>10,.0f} rows/CPU-s, {res['bytes'] / 2**20:,.0f} MiB SBDF, "
                        f"server CPU {res['server_cpu_s']:.1f}s, peak RSS {res['peak_rss_mib']:.0f} MiB",
                        flush=True,
                    )
                    requests_reset(url)
    finally:
        proc.terminate()
        proc.wait(30)
    return results


def summarize(results: list[dict[str, Any]], load: str) -> str:
    m = machine()
    lines = [
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}; load average at start {load}. "
        f"Median of {max(r['round'] for r in results) + 1} round(s). Rates in rows/s; ratios are "
        "upload / devnull (1.00 = as fast as only writing the SBDF).",
        "",
        "| rows | side | MiB SBDF | wall s | rows/s (wall) | vs devnull (wall) | client CPU s | rows/CPU-s "
        "| vs devnull (CPU) | server CPU s | peak RSS MiB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def med(rows: int, side: str, key: str) -> float:
        return statistics.median(r[key] for r in results if r["rows"] == rows and r["side"] == side)

    for rows in sorted({r["rows"] for r in results}):
        bound_wall, bound_cpu = med(rows, "devnull", "rows_per_s"), med(rows, "devnull", "rows_per_cpu_s")
        for side in SIDES:
            peak = max(r["peak_rss_mib"] for r in results if r["rows"] == rows and r["side"] == side)
            lines.append(
                f"| {rows:,} | {side} | {med(rows, side, 'bytes') / 2**20:,.0f} | {med(rows, side, 'seconds'):.1f} "
                f"| {med(rows, side, 'rows_per_s'):,.0f} | {med(rows, side, 'rows_per_s') / bound_wall:.2f} "
                f"| {med(rows, side, 'client_cpu_s'):.1f} | {med(rows, side, 'rows_per_cpu_s'):,.0f} "
                f"| {med(rows, side, 'rows_per_cpu_s') / bound_cpu:.2f} | {med(rows, side, 'server_cpu_s'):.1f} "
                f"| {peak:.0f} |"
            )
    return "\n".join(lines)


def dataframe_paths(rows: int) -> str:
    """CPU seconds of a DataFrame through a temporary file vs through the stream (best of 3)."""
    import pyarrow as pa

    from airflow_provider_spotfire.sbdf import SbdfByteStream, temporary_sbdf

    df = pa.Table.from_batches(list(record_batches(rows, rows))).to_pandas()

    def via_file() -> int:
        with temporary_sbdf(df) as written, open(written.path, "rb") as fh:
            return sum(len(b) for b in iter(lambda: fh.read(8 * 2**20), b""))

    def via_stream() -> int:
        return sum(len(piece) for piece in SbdfByteStream(df))

    best: dict[str, float] = {}
    for _ in range(3):
        for name, fn in (("temp file", via_file), ("stream", via_stream)):
            cpu0 = _cpu()
            fn()
            best[name] = min(best.get(name, float("inf")), _cpu() - cpu0)
    return (
        f"DataFrame of {rows:,} rows x 8 columns: temp file {best['temp file']:.2f} CPU-s, "
        f"stream {best['stream']:.2f} CPU-s (stream / temp file = {best['stream'] / best['temp file']:.2f})"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default="2000000,5000000,20000000", help="row counts, comma-separated")
    p.add_argument(
        "--batch-rows", type=int, default=50_000, help="rows per batch (the SQL transfer's default)"
    )
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--dataframe-rows", type=int, help="only compare a DataFrame via temp file vs stream")
    p.add_argument("--child", choices=SIDES)
    p.add_argument("--library-path")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, int(args.rows), args.batch_rows, args.library_path)))
        return 0
    if args.dataframe_rows:
        print(dataframe_paths(args.dataframe_rows))
        return 0
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as work:
        results = run_all(args, Path(work))
    table = summarize(results, load)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {"machine": machine(), "load_average": load, "batch_rows": args.batch_rows, "runs": results}
    (RESULTS / f"stream_upload-{stamp}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / f"stream_upload-{stamp}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
