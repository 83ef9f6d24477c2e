"""Streaming uploads (``upload_sbdf_stream``): bytes of unknown total size, re-cut into chunks.

Over real HTTP against the emulator; every test checks the emulator's state: the item's bytes
(sha256), the declared sizes of the job, the chunk requests, and that a failure leaves no open
job and no item.
"""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_spotfire.exceptions import SpotfireDataError, UploadAborted
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from airflow_provider_spotfire.upload.chunks import cut_chunks
from airflow_provider_spotfire.upload.options import UploadOptions
from airflow_provider_spotfire.upload.progress import UploadProgress
from tests.library.conftest import (
    NO_RETRIES,
    REPORTS,
    UPLOAD_PATH,
    assert_nothing_left,
    chunk_number,
    chunk_posts,
    item_bytes,
    items_at,
    sbdf_bytes,
    upload_jobs,
    upload_requests,
)

KIB = 1024
MIB = 1024 * KIB
CHUNK = 16 * KIB


def pieces_of(data: bytes, sizes: Iterator[int]) -> Iterator[bytes]:
    """``data`` cut at the given piece sizes (the last piece takes the rest)."""
    at = 0
    while at < len(data):
        n = next(sizes)
        yield data[at : at + n]
        at += n


def cycle(*sizes: int) -> Iterator[int]:
    while True:
        yield from sizes


def seeded_sizes(seed: int, low: int, high: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randint(low, high)


PIECES = {
    "one-byte": lambda: cycle(1),
    "chunk-minus-one": lambda: cycle(CHUNK - 1),
    "chunk-plus-one": lambda: cycle(CHUNK + 1),
    "many-small": lambda: seeded_sizes(7, 0, 300),  # includes empty pieces
    "mixed": lambda: seeded_sizes(11, 1, 3 * CHUNK),
    "one-big-piece": lambda: cycle(10**9),
}


@pytest.mark.parametrize("kind", list(PIECES))
def test_stream_is_byte_exact_for_any_piece_sizes(spotfire_emulator, hook, kind):
    size = 3 * CHUNK + 123 if kind == "one-byte" else 9 * CHUNK + 4321
    data = sbdf_bytes(size, seed=len(kind))
    path = f"{REPORTS}/stream-{kind}"
    result = hook.upload_sbdf_stream(pieces_of(data, PIECES[kind]()), path, chunk_size=CHUNK, parallelism=3)

    expected_sha = hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(item_bytes(spotfire_emulator, path)).hexdigest() == expected_sha
    assert result.sha256 == expected_sha and result.bytes == size
    assert result.chunks == -(-size // CHUNK)
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "finished"
    assert job["numberOfBytes"] is None and job["numberOfChunks"] is None  # not known: not declared
    posts = chunk_posts(upload_requests(spotfire_emulator))
    assert sorted(chunk_number(r) for r in posts) == list(range(1, result.chunks + 1))
    assert all(r["digest_headers"] == ["Content-MD5", "Digest"] for r in posts)
    assert all(r["content_length"] == CHUNK for r in posts if chunk_number(r) < result.chunks)


def test_a_declared_stream_size_is_sent_and_checked(spotfire_emulator, hook):
    data = sbdf_bytes(5 * CHUNK)
    hook.upload_sbdf_stream(pieces_of(data, cycle(999)), f"{REPORTS}/sized", size=len(data), chunk_size=CHUNK)
    (job,) = upload_jobs(spotfire_emulator)
    assert (job["numberOfBytes"], job["numberOfChunks"]) == (len(data), 5)

    spotfire_emulator.reset()
    with pytest.raises(SpotfireDataError, match=r"gave 81920 bytes but 90000 were declared"):
        hook.upload_sbdf_stream(
            pieces_of(data, cycle(999)), f"{REPORTS}/sized", size=90_000, chunk_size=CHUNK
        )
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "cancelled"
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/sized")


def test_a_stream_that_raises_midway_cancels_the_job(spotfire_emulator, hook):
    data = sbdf_bytes(10 * CHUNK)

    def broken() -> Iterator[bytes]:
        yield from pieces_of(data[: 6 * CHUNK], cycle(5000))
        raise OSError("database connection lost")

    with pytest.raises(
        SpotfireDataError, match=r"raised OSError after 98304 bytes: database connection lost"
    ):
        hook.upload_sbdf_stream(broken(), f"{REPORTS}/broken", chunk_size=CHUNK)
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "cancelled" and job["uploadedChunks"] == []  # cancelled: chunks discarded
    assert chunk_posts(upload_requests(spotfire_emulator))  # it really was midway
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/broken")


def test_a_schema_error_from_the_writer_passes_unchanged_and_cancels(spotfire_emulator, hook):
    def writer() -> Iterator[bytes]:
        yield sbdf_bytes(3 * CHUNK)
        raise SpotfireDataError("batch 2: column 'amount' changed type from Real to String")

    with pytest.raises(SpotfireDataError, match=r"^batch 2: column 'amount' changed type"):
        hook.upload_sbdf_stream(writer(), f"{REPORTS}/schema", chunk_size=CHUNK)
    assert [j["status"] for j in upload_jobs(spotfire_emulator)] == ["cancelled"]
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/schema")


@pytest.mark.parametrize(
    ("pieces", "match"),
    [
        ([], "is empty"),
        ([b"", b""], "is empty"),
        ([b"PAR1 not sbdf", b"x" * 100], "is not SBDF"),
        (iter([sbdf_bytes(10), "text"]), "yielded str after 10 bytes"),
        (b"\xdf\x5b\x01 bytes, not an iterable of pieces", "must be an iterable of bytes pieces"),
    ],
)
def test_bad_streams_open_no_job(spotfire_emulator, hook, pieces, match):
    with pytest.raises(SpotfireDataError, match=match):
        hook.upload_sbdf_stream(pieces, f"{REPORTS}/bad", chunk_size=CHUNK)
    assert [r for r in upload_requests(spotfire_emulator) if r["method"] == "PUT"] == []
    assert upload_jobs(spotfire_emulator) == []


def test_a_source_that_raises_before_any_bytes_opens_no_job(spotfire_emulator, hook):
    def nothing_yet() -> Iterator[bytes]:
        raise RuntimeError("query failed")
        yield b""  # pragma: no cover

    with pytest.raises(SpotfireDataError, match="raised RuntimeError after 0 bytes: query failed"):
        hook.upload_sbdf_stream(nothing_yet(), f"{REPORTS}/early", chunk_size=CHUNK)
    assert upload_jobs(spotfire_emulator) == []


def test_a_failed_chunk_is_resent_from_the_buffer(spotfire_conn_id, spotfire_emulator):
    """No transport retries: a refused chunk is re-sent from memory (the stream cannot be re-read)."""
    hook = SpotfireHook(spotfire_conn_id, retry_policy=NO_RETRIES)
    data = sbdf_bytes(6 * CHUNK + 17)
    consumed: list[int] = []

    def stream() -> Iterator[bytes]:
        for piece in pieces_of(data, cycle(CHUNK // 3)):
            consumed.append(len(piece))
            yield piece

    spotfire_emulator.inject_faults("503", "drop_after", path_prefix=UPLOAD_PATH + "/", method="POST")
    result = hook.upload_sbdf_stream(stream(), f"{REPORTS}/resent", chunk_size=CHUNK, parallelism=2)

    assert item_bytes(spotfire_emulator, f"{REPORTS}/resent") == data
    assert sum(consumed) == len(data)  # the stream was read exactly once
    posts = chunk_posts(upload_requests(spotfire_emulator))
    faulted = [(chunk_number(r), r["fault"]) for r in posts if r["fault"]]
    assert sorted(f for _, f in faulted) == ["503", "drop_after"]
    refused = next(n for n, f in faulted if f == "503")
    stored = next(n for n, f in faulted if f == "drop_after")
    numbers = [chunk_number(r) for r in posts]
    assert numbers.count(refused) == 2  # re-sent after the status said the server lacks it
    assert numbers.count(stored) == 1  # stored, only the answer was lost: the status confirmed it
    assert result.resumed_chunks == 2
    assert upload_jobs(spotfire_emulator, "open") == []
    hook.close()


def test_abort_cancels_a_stream_upload(spotfire_emulator, hook):
    from airflow_provider_spotfire.upload.engine import ChunkedUpload

    holder: list[ChunkedUpload] = []

    def endless() -> Iterator[bytes]:
        yield sbdf_bytes(CHUNK)
        while True:
            holder[0].abort()  # e.g. on_kill from another thread
            yield b"\0" * CHUNK

    upload = ChunkedUpload.for_stream(hook, endless(), f"{REPORTS}/aborted", UploadOptions(chunk_size=CHUNK))
    holder.append(upload)
    with pytest.raises(UploadAborted):
        upload.run()
    assert [j["status"] for j in upload_jobs(spotfire_emulator)] == ["cancelled"]
    assert items_at(spotfire_emulator, f"{REPORTS}/aborted") == []


def test_memory_stays_bounded_for_a_256_mib_stream(spotfire_emulator, hook):
    """256 MiB generated on the fly: traced memory while sending stays within a few chunks, flat."""
    chunk, parallelism, total = 4 * MIB, 3, 256 * MIB
    block = sbdf_bytes(2 * MIB + 7, seed=3)

    def generated() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            piece = block[: min(len(block), total - sent)]
            sent += len(piece)
            yield piece

    peaks: list[int] = []

    def record(p: UploadProgress) -> None:
        peaks.append(tracemalloc.get_traced_memory()[1])  # peak so far, before the finish

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = hook.upload_sbdf_stream(
            generated(),
            f"{REPORTS}/big-stream",
            chunk_size=chunk,
            parallelism=parallelism,
            progress=record,
        )
    finally:
        tracemalloc.stop()
    assert result.bytes == total and result.chunks == 64
    growth = max(peaks) - base
    # The emulator runs in this process, so its request buffers are traced too. Client: chunks in
    # flight + the one being cut and its copy; server: one body per parallel request.
    bound = (2 * parallelism + 3) * chunk
    assert growth < bound, f"peak grew by {growth / MIB:.1f} MiB (bound {bound / MIB:.0f} MiB)"
    assert max(peaks) - peaks[len(peaks) // 4] < chunk  # flat: no growth after the first quarter
    (item,) = items_at(spotfire_emulator, f"{REPORTS}/big-stream")
    assert item["size"] == total


def test_cut_chunks_never_copies_exact_file_reads():
    pieces = [b"a" * 8, b"b" * 8, b"c" * 3]
    out = list(cut_chunks(pieces, 8))
    assert out == pieces and out[0] is pieces[0] and out[1] is pieces[1]
    mixed: list[Any] = [bytearray(b"xy"), memoryview(b"zzzz"), b"", b"w"]
    assert list(cut_chunks(mixed, 3)) == [b"xyz", b"zzz", b"w"]


def test_cut_chunks_copies_each_byte_once_and_keeps_no_reused_buffer():
    import random

    rng = random.Random(7)
    for _ in range(500):
        chunk = rng.randint(1, 20)
        data = rng.randbytes(rng.randint(0, 200))
        cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 12)))
        spans = list(zip([0, *cuts], [*cuts, len(data)], strict=True))

        def reused_buffers(spans: list[tuple[int, int]] = spans, data: bytes = data) -> Any:
            for i, (a, b) in enumerate(spans):
                piece = data[a:b]
                if i % 2:  # a producer that overwrites its buffer once the next piece is asked for
                    buf = bytearray(piece)
                    yield buf
                    buf[:] = b"\xff" * len(buf)
                else:
                    yield piece

        out = list(cut_chunks(reused_buffers(), chunk))
        assert b"".join(out) == data
        assert all(len(c) == chunk for c in out[:-1]) and all(type(c) is bytes for c in out)


# ---- with the SBDF writer (airflow_provider_spotfire.sbdf.iter_sbdf_bytes) -------------------------
def test_batches_written_by_iter_sbdf_bytes_arrive_intact(spotfire_emulator, hook, tmp_path):
    import pandas as pd

    from airflow_provider_spotfire.sbdf import iter_sbdf_bytes, read_sbdf

    batches = [pd.DataFrame({"id": range(i * 500, (i + 1) * 500), "x": [i * 0.5] * 500}) for i in range(6)]
    result = hook.upload_sbdf_stream(iter_sbdf_bytes(iter(batches)), f"{REPORTS}/written", chunk_size=CHUNK)
    content = item_bytes(spotfire_emulator, f"{REPORTS}/written")
    assert result.bytes == len(content) and result.sha256 == hashlib.sha256(content).hexdigest()
    path = tmp_path / "back.sbdf"
    path.write_bytes(content)
    back = read_sbdf(path)
    assert list(back["id"]) == list(range(3000)) and back["x"].iloc[-1] == 2.5


def test_a_schema_change_between_batches_cancels_the_upload(spotfire_emulator, hook):
    import pandas as pd

    from airflow_provider_spotfire.exceptions import SbdfSchemaError
    from airflow_provider_spotfire.sbdf import iter_sbdf_bytes

    def batches() -> Iterator[Any]:
        for i in range(4):
            yield pd.DataFrame({"id": range(i * 4000, (i + 1) * 4000), "x": [1.0] * 4000})
        yield pd.DataFrame({"id": range(10), "x": ["text"] * 10})  # x: Real -> String

    with pytest.raises(SbdfSchemaError, match="x"):
        hook.upload_sbdf_stream(iter_sbdf_bytes(batches()), f"{REPORTS}/schema-change", chunk_size=CHUNK)
    assert [j["status"] for j in upload_jobs(spotfire_emulator)] == ["cancelled"]
    assert chunk_posts(upload_requests(spotfire_emulator))  # chunks were sent before the bad batch
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/schema-change")
