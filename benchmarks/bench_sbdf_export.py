"""Benchmark: our SBDF writer against ``spotfire.sbdf.export_data`` and against ``numpy.tofile``.

Run: ``.venv/bin/python benchmarks/bench_sbdf_export.py [--rows 1000000] [--repeat 3]``

Cases (CPU time of this process, ``time.process_time``; repetitions alternate the order):

* ``mixed``: int64, float64, low- and high-cardinality strings, bool, naive and tz-aware datetimes
  and a nullable Int64 with gaps. ``write_sbdf`` (normalisation included) against
  ``export_data`` of the already-normalised frame (``prepare_dataframe`` outside the timing).
  Goal: ratio ≤ 0.25.
* ``numeric``: int64, float64, int32, float32. Goal: ratio ≤ 1.
* ``per type``: one column of each type; MB/s of SBDF written by ``write_sbdf`` and by
  ``numpy.tofile`` of the same buffers (values; strings: UTF-8 bytes + offsets), the I/O bound.
* ``stream``: ``iter_sbdf_bytes`` of an 8-column Arrow table in 100,000-row batches into
  ``/dev/null``: rows/s (the bound a streaming upload is compared against).
* ``rss``: peak RSS of a fresh process streaming ``--rss-rows`` rows (generated batch by batch)
  into ``/dev/null``: flat when memory is bounded by the batch.

The files of both writers are read back with ``spotfire.sbdf.import_data`` and must be equal.
Prints markdown and writes it to ``benchmarks/results/sbdf_writer.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from spotfire import sbdf as spotfire_sbdf

from airflow_provider_spotfire.sbdf import iter_sbdf_bytes, prepare_dataframe, write_sbdf

MIXED_GOAL = 0.25
NUMERIC_GOAL = 1.0
RESULTS = Path(__file__).resolve().parent / "results" / "sbdf_writer.md"


def mixed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "ms")
    naive = (start + rng.integers(0, 365 * 86_400_000, rows).astype("timedelta64[ms]")).astype(
        "datetime64[ns]"
    )
    gaps = pd.array(rng.integers(0, 1_000_000, rows), dtype="Int64")
    gaps[rng.random(rows) < 0.1] = pd.NA
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "value": rng.normal(size=rows),
            "low_card": pd.Series(rng.choice([f"country-{i}" for i in range(50)], rows), dtype=object),
            "high_card": pd.Series(
                np.char.add("user-", rng.integers(0, 10**9, rows).astype(str)), dtype=object
            ),
            "flag": rng.random(rows) < 0.5,
            "naive_ts": naive,
            "aware_ts": pd.Series(naive).dt.tz_localize("UTC").dt.tz_convert("Europe/Stockholm"),
            "gaps": gaps,
        }
    )


def numeric_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "i64": rng.integers(-(10**12), 10**12, rows),
            "f64": rng.normal(size=rows),
            "i32": rng.integers(-(10**6), 10**6, rows).astype("int32"),
            "f32": rng.normal(size=rows).astype("float32"),
        }
    )


def cpu(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.process_time()
    fn()
    return time.process_time() - start


def alternate(ours: Callable[[], object], base: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median CPU seconds of ours and base, alternating AB, BA, ..."""
    a: list[float] = []
    b: list[float] = []
    for rep in range(repeat):
        pair = [(ours, a), (base, b)]
        for fn, bucket in pair if rep % 2 == 0 else reversed(pair):
            bucket.append(cpu(fn))
        print(f"  rep {rep + 1}/{repeat}: ours {a[-1]:.3f}s, base {b[-1]:.3f}s", file=sys.stderr)
    return statistics.median(a), statistics.median(b)


def check_same_table(ours_path: str, base_path: str) -> None:
    """Both files read back (spotfire.sbdf.import_data) as the same table."""
    pd.testing.assert_frame_equal(spotfire_sbdf.import_data(ours_path), spotfire_sbdf.import_data(base_path))


def versus_export_data(name: str, df: pd.DataFrame, repeat: int, workdir: str) -> dict[str, float]:
    ready, _ = prepare_dataframe(df)
    ours_path, base_path = (
        os.path.join(workdir, f"{name}-ours.sbdf"),
        os.path.join(workdir, f"{name}-base.sbdf"),
    )
    ours, base = alternate(
        lambda: write_sbdf(df, ours_path), lambda: spotfire_sbdf.export_data(ready, base_path), repeat
    )
    check_same_table(ours_path, base_path)
    size = os.path.getsize(ours_path)
    return {
        "ours": ours,
        "base": base,
        "ratio": ours / base,
        "mb": size / 1e6,
        "base_mb": os.path.getsize(base_path) / 1e6,
    }


def per_type_columns(rows: int) -> dict[str, tuple[pd.Series, list[np.ndarray]]]:
    """name → (column, the raw buffers numpy.tofile writes for it)."""
    rng = np.random.default_rng(2)
    ints = rng.integers(-(10**12), 10**12, rows)
    ts = pd.Series(
        np.datetime64("2024-01-01", "ms") + rng.integers(0, 10**10, rows).astype("timedelta64[ms]")
    )
    words = pd.Series(np.char.add("user-", rng.integers(0, 10**9, rows).astype(str)), dtype=object)
    arrow_words = pa.array(words, type=pa.large_string())
    word_buffers = [
        np.frombuffer(arrow_words.buffers()[1], np.int64),
        np.frombuffer(arrow_words.buffers()[2], np.uint8),
    ]
    flags = rng.random(rows) < 0.5
    return {
        "LongInteger (int64)": (pd.Series(ints), [ints]),
        "Integer (int32)": (pd.Series(ints.astype("int32")), [ints.astype("int32")]),
        "Real (float64)": (pd.Series(ints / 7.0), [ints / 7.0]),
        "SingleReal (float32)": (pd.Series((ints / 7.0).astype("float32")), [(ints / 7.0).astype("float32")]),
        "Boolean (bool)": (pd.Series(flags), [flags]),
        "DateTime (datetime64[ms])": (ts, [ts.to_numpy().view("i8")]),
        "TimeSpan (timedelta64[ms])": (ts - ts.iloc[0], [(ts - ts.iloc[0]).to_numpy().view("i8")]),
        "String (object str)": (words, word_buffers),
        "String (Arrow large_string)": (pd.Series(pd.arrays.ArrowStringArray(arrow_words)), word_buffers),
        "Int64 with 10 % gaps": (
            pd.Series(pd.array(np.where(flags & (ints % 10 == 0), None, ints), dtype="Int64")),
            [ints, flags],
        ),
    }


def per_type(rows: int, repeat: int, workdir: str) -> list[dict[str, object]]:
    out = []
    path, raw = os.path.join(workdir, "type.sbdf"), os.path.join(workdir, "type.bin")
    for name, (series, buffers) in per_type_columns(rows).items():
        df = pd.DataFrame({"x": series})

        def tofile(bufs: list[np.ndarray] = buffers) -> None:
            with open(raw, "wb") as fh:
                for b in bufs:
                    b.tofile(fh)

        ours, base = alternate(lambda df=df: write_sbdf(df, path), tofile, repeat)
        sbdf_mb, raw_mb = os.path.getsize(path) / 1e6, os.path.getsize(raw) / 1e6
        out.append(
            {"type": name, "sbdf_mb_s": sbdf_mb / ours, "tofile_mb_s": raw_mb / base, "ratio": ours / base}
        )
    return out


def stream_rows_per_s(rows: int, repeat: int) -> tuple[float, float]:
    table = pa.Table.from_pandas(mixed_frame(rows, seed=3), preserve_index=False)
    batches = table.to_batches(max_chunksize=100_000)
    results = []
    for _ in range(repeat):
        gc.collect()
        wall, start = time.perf_counter(), time.process_time()
        with open(os.devnull, "wb") as sink:
            for piece in iter_sbdf_bytes(iter(batches)):
                sink.write(piece)
        results.append((time.process_time() - start, time.perf_counter() - wall))
    cpu_s = statistics.median(r[0] for r in results)
    wall_s = statistics.median(r[1] for r in results)
    return rows / cpu_s, rows / wall_s


def generated_batches(rows: int, batch_rows: int = 100_000):
    """``rows`` rows of the mixed frame's shape as Arrow batches, generated one at a time."""
    for start in range(0, rows, batch_rows):
        frame = mixed_frame(min(batch_rows, rows - start), seed=start)
        yield pa.RecordBatch.from_pandas(frame, preserve_index=False)


def peak_rss_mib(rows: int) -> tuple[float, float]:
    """(peak RSS MiB before streaming, after) of a fresh process streaming ``rows`` into /dev/null."""
    code = (
        "import resource, sys, os; sys.path.insert(0, sys.argv[2]);"
        "import bench_sbdf_export as b; from airflow_provider_spotfire.sbdf import iter_sbdf_bytes;"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "sink = open(os.devnull, 'wb');"
        "[sink.write(p) for p in iter_sbdf_bytes(b.generated_batches(int(sys.argv[1])))];"
        "print(before / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(rows), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    before, after = out.stdout.split()
    return float(before), float(after)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--stream-rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rss-rows", default="2000000,20000000", help="rows for the peak-RSS runs ('' to skip)"
    )
    args = parser.parse_args()
    rss = [(int(n), *peak_rss_mib(int(n))) for n in args.rss_rows.split(",") if n]
    with tempfile.TemporaryDirectory() as workdir:
        print("mixed", file=sys.stderr)
        mixed = versus_export_data("mixed", mixed_frame(args.rows), args.repeat, workdir)
        print("numeric", file=sys.stderr)
        numeric = versus_export_data("numeric", numeric_frame(args.rows), args.repeat, workdir)
        print("per type", file=sys.stderr)
        types = per_type(args.rows, args.repeat, workdir)
    print("stream", file=sys.stderr)
    stream_cpu, stream_wall = stream_rows_per_s(args.stream_rows, args.repeat)
    load = os.getloadavg()[0]
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average {load:.1f} on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"pyarrow {pa.__version__}, spotfire {version('spotfire')}; {args.rows:,} rows, median of {args.repeat} (CPU s)",
        "",
        "| frame | `write_sbdf` CPU s | `export_data` CPU s | ratio | goal | SBDF MB (ours / export_data) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r, goal in (
        ("mixed (8 columns)", mixed, MIXED_GOAL),
        ("numeric (4 columns)", numeric, NUMERIC_GOAL),
    ):
        verdict = "met" if r["ratio"] <= goal else "NOT met"
        lines.append(
            f"| {name} | {r['ours']:.3f} | {r['base']:.3f} | **{r['ratio']:.3f}x** | ≤ {goal}x ({verdict}) "
            f"| {r['mb']:.1f} / {r['base_mb']:.1f} |"
        )
    lines += [
        "",
        "| column type | SBDF MB/s (`write_sbdf`) | `numpy.tofile` MB/s | CPU ratio |",
        "|---|---:|---:|---:|",
    ]
    for t in types:
        lines.append(f"| {t['type']} | {t['sbdf_mb_s']:.0f} | {t['tofile_mb_s']:.0f} | {t['ratio']:.2f}x |")
    lines += [
        "",
        f"`iter_sbdf_bytes` → /dev/null, {args.stream_rows:,} rows x 8 columns (the mixed frame as Arrow, "
        f"100,000-row batches): **{stream_cpu:,.0f} rows/s CPU**, {stream_wall:,.0f} rows/s wall.",
    ]
    if rss:
        lines += [
            "",
            "| rows streamed (8 columns, 100,000-row batches) | peak RSS before (MiB) | peak RSS after (MiB) |",
        ]
        lines += ["|---:|---:|---:|"] + [f"| {n:,} | {a:.0f} | {b:.0f} |" for n, a, b in rss]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
