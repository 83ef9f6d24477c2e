"""Benchmark: SBDF upload throughput and peak RSS of ``SpotfireHook.upload_sbdf_file``.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_upload.py                     # 256 MiB and 1 GiB, 3 rounds
    .venv/bin/python benchmarks/bench_upload.py --sizes 64 --repeat 1

What it does, in one run:

1. writes one file per size: a valid SBDF file header (``DF 5B 01``, version 1.0) followed by
   filler bytes (a 1 MiB pseudo-random block, repeated). The emulator, like Spotfire, checks the
   header; hashing and I/O cost the same for any bytes;
2. starts the Spotfire Server emulator in its own process
   (``python -m airflow_provider_spotfire.emulator --port 0 --config ...``), storing uploads in the
   benchmark's work directory;
3. for each size and round, runs each side in a fresh subprocess (so that ``ru_maxrss`` is that
   upload's peak), alternating the order of the sides:

   * ``provider`` -- ``SpotfireHook.upload_sbdf_file`` with its defaults (8 MiB chunks, 3 in
     parallel, ``Content-MD5`` + ``Digest: SHA-256`` on every chunk, whole-file sha256);
   * ``raw`` -- the same server, one job with a single chunk: ``requests.post`` streaming the
     file object (no digests), then finish -- the fastest a client can be;
   * ``raw+digests`` -- as ``raw`` but with ``Content-MD5`` and ``Digest`` headers, which a
     single request can only carry after a full read of the file to compute them;

   * ``stream`` -- ``SpotfireHook.upload_sbdf_stream`` fed by a generator of the same bytes in
     pieces of 1 MiB + 7 bytes (size not declared), defaults otherwise;
   * ``devnull`` -- the same generator written to ``/dev/null``: the cost of producing the bytes,
     the bound a streaming upload is compared with;

   each timed from "create job" to "finished"; the item's sha256 (emulator state) is checked
   against the file's;
4. prints a Markdown table (median of the rounds) and writes it, with every raw number, to
   ``benchmarks/results/``. The big files and the emulator's copies are deleted at the end.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MIB = 1024 * 1024
SBDF_HEADER = b"\xdf\x5b\x01\x01\x00"
CONN_ID = "spotfire_bench"
FOLDER = "/Airflow/Reports"
FILE_SIDES = ("provider", "raw", "raw+digests")
STREAM_SIDES = ("stream", "devnull")
SIDES = FILE_SIDES + STREAM_SIDES
STREAM_PIECE = MIB + 7  # odd piece sizes: the engine re-cuts them into 8 MiB chunks


# ------------------------------------------------------------------------------------------ child side
def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(side: str, path: str, library_path: str) -> dict[str, Any]:
    """Upload ``path`` one way; returns timings and memory of this process."""
    import requests

    from airflow_provider_spotfire._sbdf_file import assert_sbdf_file
    from airflow_provider_spotfire.api.library import FIRST_CHUNK, LibraryUpload, build_create_upload_job
    from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

    hook = SpotfireHook(CONN_ID)
    cfg = hook.config
    token = hook.get_token(("api.rest.library.upload",)).access_token  # warm: not part of the timing
    size = os.path.getsize(path)
    rss_before = _rss_mib()
    parent, title = library_path.rsplit("/", 1)
    cpu0 = _cpu()
    started = time.perf_counter()
    if side == "provider":
        result = hook.upload_sbdf_file(path, library_path, overwrite=True)
        sha256 = result.sha256
    elif side == "stream":
        result = hook.upload_sbdf_stream(generated_pieces(size), library_path, overwrite=True)
        sha256 = result.sha256
    elif side == "devnull":
        with open(os.devnull, "wb") as sink:
            for piece in generated_pieces(size):
                sink.write(piece)
        sha256 = ""
    else:
        assert_sbdf_file(path)
        headers = {"Authorization": f"Bearer {token}", "Content-Length": str(size)}
        sha256 = ""
        if side == "raw+digests":
            md5, sha = hashlib.md5(), hashlib.sha256()
            with open(path, "rb") as fh:
                while block := fh.read(8 * MIB):
                    md5.update(block)
                    sha.update(block)
            headers["Content-MD5"] = base64.b64encode(md5.digest()).decode()
            headers["Digest"] = "SHA-256=" + base64.b64encode(sha.digest()).decode()
            sha256 = sha.hexdigest()
        create = build_create_upload_job(
            LibraryUpload(parent, title, overwrite=True, number_of_bytes=size, number_of_chunks=1)
        )
        session = requests.Session()
        r = session.put(
            f"{cfg.api_url}/{create.path}",
            json=create.json,
            headers={"Authorization": headers["Authorization"]},
        )
        r.raise_for_status()
        links = r.json()["data"]
        with open(path, "rb") as fh:
            r = session.post(
                cfg.base_url + links["uploadLinkBaseRel"],
                params={"chunk": FIRST_CHUNK},
                data=fh,
                headers=headers,
            )
        r.raise_for_status()
        r = session.post(
            cfg.base_url + links["finishLinkRel"],
            json={},
            headers={"Authorization": headers["Authorization"]},
        )
        r.raise_for_status()
    seconds = time.perf_counter() - started
    cpu = _cpu() - cpu0
    return {
        "client_cpu_s": cpu,
        "side": side,
        "bytes": size,
        "seconds": seconds,
        "mib_per_s": size / MIB / seconds,
        "sha256": sha256,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _maxrss_mib(),
    }


def generated_pieces(size: int) -> Any:
    """The bytes of :func:`make_file`, generated in pieces of ``STREAM_PIECE`` bytes (no file)."""
    block3 = hashlib.shake_256(b"bench-filler").digest(MIB) * 3
    yield SBDF_HEADER
    left, offset = size - len(SBDF_HEADER), 0
    while left > 0:
        n = min(left, STREAM_PIECE)
        yield block3[offset : offset + n]
        offset = (offset + n) % MIB
        left -= n


# ----------------------------------------------------------------------------------------- parent side
def make_file(path: Path, size: int) -> None:
    block = hashlib.shake_256(b"bench-filler").digest(MIB)
    with open(path, "wb") as fh:
        fh.write(SBDF_HEADER)
        left = size - len(SBDF_HEADER)
        while left > 0:
            n = min(left, MIB)
            fh.write(block[:n])
            left -= n


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 * MIB):
            h.update(block)
    return h.hexdigest()


def start_emulator(work: Path) -> tuple[subprocess.Popen[str], str]:
    cfg = work / "emulator.json"
    cfg.write_text(json.dumps({"data_dir": str(work / "emulator-data"), "max_upload_bytes": 8 * 1024 * MIB}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_spotfire.emulator", "--port", "0", "--config", str(cfg)],
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
    raise RuntimeError("the emulator did not start")


def run_child(side: str, path: Path, library_path: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--path", str(path), "--library-path", library_path],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def proc_cpu(pid: int) -> float:
    """user+sys CPU seconds of another process (Linux)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def item_sha(emulator_url: str, library_path: str) -> str:
    import requests

    items = requests.get(f"{emulator_url}/_emulator/state", timeout=60).json()["library"]["items"]
    return next(i["sha256"] for i in items if i["path"] == library_path)


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="256,1024", help="file sizes in MiB, comma-separated")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sides", default=",".join(SIDES), help=f"which of {', '.join(SIDES)} to run")
    p.add_argument("--workdir", help="where the big files go (default: a temp dir)")
    p.add_argument("--child", choices=SIDES)
    p.add_argument("--path")
    p.add_argument("--library-path")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.library_path)))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-upload-", dir=args.workdir))
    proc = None
    rows: list[dict[str, Any]] = []
    try:
        proc, conn = start_emulator(work)
        url = json.loads(conn)["host"]
        env = dict(os.environ)
        env.update(
            {
                f"AIRFLOW_CONN_{CONN_ID.upper()}": conn,
                "AIRFLOW_HOME": str(work / "airflow-home"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            }
        )
        for size_mib in (int(s) for s in args.sizes.split(",")):
            path = work / f"bench-{size_mib}.sbdf"
            make_file(path, size_mib * MIB)
            local = sha256_file(path)
            for r in range(args.repeat):
                sides = tuple(x for x in SIDES if x in args.sides.split(","))
                order = sides if r % 2 == 0 else tuple(reversed(sides))
                for side in order:
                    library_path = f"{FOLDER}/bench-{size_mib}-{side.replace('+', '-')}"
                    server0 = proc_cpu(proc.pid)
                    res = run_child(side, path, library_path, env)
                    res["server_cpu_s"] = proc_cpu(proc.pid) - server0
                    if side != "devnull":
                        assert item_sha(url, library_path) == local, f"{side}: the library holds other bytes"
                    if res["sha256"]:
                        assert res["sha256"] == local
                    res.update(size_mib=size_mib, round=r)
                    rows.append(res)
                    print(
                        f"{size_mib:>5} MiB {side:<12} round {r}: {res['mib_per_s']:7.1f} MiB/s, "
                        f"CPU client {res['client_cpu_s']:.2f}s server {res['server_cpu_s']:.2f}s, "
                        f"peak RSS {res['peak_rss_mib']:.0f} MiB (+{res['peak_rss_mib'] - res['rss_before_mib']:.0f})",
                        flush=True,
                    )
                    requests_reset(url)
            path.unlink()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)

    table = summarize(rows)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"upload-{stamp}.json").write_text(json.dumps({"machine": machine(), "runs": rows}, indent=2))
    (RESULTS / f"upload-{stamp}.md").write_text(table + "\n")
    return 0


def requests_reset(url: str) -> None:
    """Forget the uploaded items (deletes their files) and the request log between runs."""
    import requests

    requests.post(f"{url}/_emulator/reset", params={"keep_config": "true"}, timeout=60).raise_for_status()


def summarize(rows: list[dict[str, Any]]) -> str:
    m = machine()
    rounds = max(r["round"] for r in rows) + 1
    lines = [
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}. Median of {rounds} round(s); "
        "CPU in seconds per GiB uploaded; RSS of the uploading process (peak, and growth over the "
        "RSS after imports).",
        "",
        "| size | side | MiB/s | vs raw | vs raw+digests | client CPU s/GiB | client CPU vs raw+digests "
        "| server CPU s/GiB | peak RSS MiB | RSS growth MiB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    sides_run = {r["side"] for r in rows}

    def med(size: int, side: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["size_mib"] == size and r["side"] == side)

    def row(size: int, side: str, speed_ref: float, cpu_ref: float, speed_ref2: float | None) -> str:
        sel = [r for r in rows if r["size_mib"] == size and r["side"] == side]
        gib = size / 1024
        speed, cpu = med(size, side, "mib_per_s"), med(size, side, "client_cpu_s")
        second = f" {speed / speed_ref2:.2f}x |" if speed_ref2 is not None else ""
        return (
            f"| {size} MiB | {side} | {speed:.1f} | {speed / speed_ref:.2f}x |{second} {cpu / gib:.1f} | "
            f"{cpu / cpu_ref:.2f}x | {med(size, side, 'server_cpu_s') / gib:.1f} | "
            f"{max(r['peak_rss_mib'] for r in sel):.0f} | "
            f"{max(r['peak_rss_mib'] - r['rss_before_mib'] for r in sel):.0f} |"
        )

    sizes = sorted({r["size_mib"] for r in rows})
    if set(FILE_SIDES) <= sides_run:
        for size in sizes:
            raw, raw_d = med(size, "raw", "mib_per_s"), med(size, "raw+digests", "mib_per_s")
            cpu_d = med(size, "raw+digests", "client_cpu_s")
            lines.extend(row(size, side, raw, cpu_d, raw_d) for side in FILE_SIDES)
    if set(STREAM_SIDES) <= sides_run:
        lines += [
            "",
            "| size | side | MiB/s | vs devnull | client CPU s/GiB | client CPU vs devnull | server CPU s/GiB "
            "| peak RSS MiB | RSS growth MiB |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for size in sizes:
            bound, cpu_bound = med(size, "devnull", "mib_per_s"), med(size, "devnull", "client_cpu_s")
            lines.extend(row(size, side, bound, cpu_bound, None) for side in STREAM_SIDES)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
