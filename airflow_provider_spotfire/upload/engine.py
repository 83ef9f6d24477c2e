"""The upload engine: one library item from a file or a byte stream, through one upload job.

:class:`ChunkedUpload` checks everything local first, creates the job, sends numbered chunks
(``parallelism`` at a time, each with ``Content-MD5`` and ``Digest``), recovers failed chunks
through the job status (``uploadedChunks``), finishes, and cancels the job on any failure.

A file is a stream of known size: both go through the same loop. Memory is bounded: at most
``parallelism`` chunks in flight (a failed one is re-sent from that buffer) plus the one being
cut from the source, whatever the total size.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire.api.library import (
    FIRST_CHUNK,
    MAX_CHUNKS,
    LibraryUpload,
    UploadJob,
    UploadJobRef,
    split_library_path,
)
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireConfigurationError,
    SpotfireDataError,
    SpotfireError,
    SpotfireJobError,
    SpotfireTimeoutError,
    UploadAborted,
)
from airflow_provider_spotfire.upload.chunks import (
    ByteSource,
    FileSource,
    Piece,
    StreamSource,
    check_sbdf_start,
    cut_chunks,
)
from airflow_provider_spotfire.upload.options import UploadOptions
from airflow_provider_spotfire.upload.progress import UploadProgress

log = logging.getLogger(__name__)

RESUME_ROUNDS = 5
FINISH_ATTEMPTS = 5

ProgressCallback = Callable[[UploadProgress], None]
JobCallback = Callable[[UploadJob], None]
InFlight = dict["cf.Future[None]", tuple[int, bytes]]


class UploadClient(Protocol):
    """The hook methods the engine uses (``LibraryHookMixin`` provides them)."""

    retry_policy: RetryPolicy

    @property
    def transport(self) -> Any: ...

    def create_upload_job_for(self, upload: LibraryUpload) -> UploadJob: ...

    def upload_chunk(
        self, job: UploadJobRef, chunk: int, data: bytes, *, finish: bool = False
    ) -> UploadJob: ...

    def get_upload_status(self, job: UploadJobRef) -> UploadJob: ...

    def finish_upload_job(self, job: UploadJobRef) -> UploadJob: ...

    def cancel_upload_job_quietly(self, job: UploadJobRef, *, reason: str = "") -> bool: ...


@dataclass(frozen=True)
class UploadResult:
    """What an upload did (``finished_at`` is None if not waited for)."""

    library_path: str
    job_id: str
    bytes: int
    chunks: int
    sha256: str
    finished_at: str | None
    elapsed: float
    resumed_chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (XCom)."""
        return {
            "library_path": self.library_path,
            "job_id": self.job_id,
            "bytes": self.bytes,
            "chunks": self.chunks,
            "sha256": self.sha256,
            "finished_at": self.finished_at,
            "elapsed_seconds": round(self.elapsed, 3),
            "resumed_chunks": self.resumed_chunks,
        }


def _first_then(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """``first.pop()`` then ``rest``, without keeping a reference to the first chunk."""
    yield first.pop()
    yield from rest


@dataclass(frozen=True)
class _Turn:
    """One chunk's place in the whole-item hash: wait for ``after``, then set ``done``."""

    after: threading.Event
    done: threading.Event


class _OrderedHash:
    """The sha256 of all chunks, fed from the sender threads in chunk order."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._last = threading.Event()
        self._last.set()
        self.hashed = 0

    def next_turn(self) -> _Turn:
        """The turn of the next chunk (called in chunk order, on the main thread)."""
        turn = _Turn(self._last, threading.Event())
        self._last = turn.done
        return turn

    def update_in_turn(self, turn: _Turn, data: bytes, abort: threading.Event) -> None:
        """Add ``data`` once the previous chunk was added; give up (leave the hash short) on abort."""
        while not turn.after.wait(0.05):
            if abort.is_set():
                return
        self._sha.update(data)  # only one thread at a time gets here: the one whose turn it is
        self.hashed += len(data)
        turn.done.set()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class ChunkedUpload:
    """Uploads one SBDF file or byte stream through an upload job: chunks, threads, resume, cancel.

    Call :meth:`abort` from another thread (``on_kill``) to stop it; the job is then cancelled.
    """

    def __init__(
        self,
        hook: UploadClient,
        source: ByteSource,
        library_path: str,
        options: UploadOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        on_job_created: JobCallback | None = None,
    ) -> None:
        self.hook = hook
        self.source = source
        self.options = options = options or UploadOptions()
        parent, title = split_library_path(library_path)
        size = source.size
        self.total_chunks = max(1, math.ceil(size / options.chunk_size)) if size is not None else None
        if self.total_chunks is not None and self.total_chunks > MAX_CHUNKS:
            raise SpotfireConfigurationError(
                f"{self.total_chunks} chunks of {options.chunk_size} bytes exceed the {MAX_CHUNKS} chunks "
                "one job can hold; raise chunk_size."
            )
        self.upload = LibraryUpload(
            parent_path=parent,
            title=title,
            overwrite=options.overwrite,
            description=options.description,
            keywords=options.keywords,
            number_of_bytes=size,
            number_of_chunks=self.total_chunks,
        )
        self.progress = progress
        self.on_job_created = on_job_created
        self.job: UploadJob | None = None
        self._abort = threading.Event()
        self._stopped = False  # abort() was called: stopped from outside, not by a failure
        self._acked: dict[int, int] = {}  # chunk number -> size, acknowledged by the server
        self._bytes_acked = 0
        self._started = 0.0
        self._recovered: set[int] = set()

    @classmethod
    def for_file(
        cls,
        hook: UploadClient,
        path: str | os.PathLike[str],
        library_path: str,
        options: UploadOptions | None = None,
        **callbacks: Any,
    ) -> ChunkedUpload:
        """An upload of the SBDF file ``path`` (checked now: exists, not empty, SBDF)."""
        return cls(hook, FileSource(path), library_path, options, **callbacks)

    @classmethod
    def for_stream(
        cls,
        hook: UploadClient,
        pieces: Iterable[Piece],
        library_path: str,
        options: UploadOptions | None = None,
        *,
        size: int | None = None,
        **callbacks: Any,
    ) -> ChunkedUpload:
        """An upload of the bytes ``pieces`` yields (``size`` declared to the server when given)."""
        return cls(hook, StreamSource(pieces, size=size), library_path, options, **callbacks)

    # ---- control ---------------------------------------------------------------------------
    def abort(self) -> None:
        """Stop sending (thread-safe); :meth:`run` then cancels the job and raises :class:`UploadAborted`."""
        self._stopped = True
        self._abort.set()

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise self._aborted()

    def _aborted(self) -> UploadAborted:
        return UploadAborted(
            f"The upload to {self.upload.library_path!r} was stopped (task killed or timed out); "
            "its upload job is cancelled.",
            job_id=self.job.job_id if self.job else None,
            status="cancelled",
        )

    # ---- main ------------------------------------------------------------------------------
    def run(self) -> UploadResult:
        """Create the job, send every chunk, finish; cancel the job on any failure."""
        _ = self.hook.transport  # build the shared session before worker threads use it
        chunk_size = self.options.chunk_size
        chunks = cut_chunks(self.source.pieces(chunk_size), chunk_size)
        try:
            self._check_abort()
            first = next(chunks, None)  # a source that is empty, not SBDF or raises opens no job
            if first is None:
                raise SpotfireDataError(f"{self.source.name} is empty; there is nothing to upload.")
            check_sbdf_start(first, self.source.name, chunk_size)
            pending_first = [first]
            del first  # held only until it is sent, like every other chunk
            self._started = time.monotonic()
            job = self.job = self.hook.create_upload_job_for(self.upload)
            self._log_created(job)
            try:
                if self.on_job_created is not None:
                    self.on_job_created(job)
                sha256, size, count = self._send_all(job, _first_then(pending_first, chunks))
                finished = self._finish(job)
            except BaseException as exc:
                self._abort.set()
                self.hook.cancel_upload_job_quietly(job, reason=f"{type(exc).__name__}: {exc}")
                if self._stopped and not isinstance(exc, UploadAborted):
                    # stopped from outside (on_kill cancels the job too): a chunk in flight may then
                    # fail with 404 job_unknown; what happened is the stop, not that failure
                    raise self._aborted() from exc
                raise
        finally:
            chunks.close()  # closes the file / the source generator
        return UploadResult(
            library_path=self.upload.library_path,
            job_id=job.job_id,
            bytes=size,
            chunks=count,
            sha256=sha256,
            finished_at=finished.finished_at,
            elapsed=time.monotonic() - self._started,
            resumed_chunks=len(self._recovered),
        )

    def _log_created(self, job: UploadJob) -> None:
        size = f"{self.source.size} bytes" if self.source.size is not None else "a stream of unknown size"
        chunks = f"{self.total_chunks} chunk(s)" if self.total_chunks is not None else "chunks"
        log.info(
            "Upload job %s created for %s: %s in %s of up to %d bytes, %d in parallel.",
            job.job_id,
            self.upload.library_path,
            size,
            chunks,
            self.options.chunk_size,
            self.options.parallelism,
        )

    # ---- chunks ----------------------------------------------------------------------------
    def _send_all(self, job: UploadJob, chunks: Iterator[bytes]) -> tuple[str, int, int]:
        """Send every chunk; returns (sha256 of all bytes, bytes, chunks)."""
        whole = _OrderedHash()
        consumed, number = 0, FIRST_CHUNK - 1
        inflight: InFlight = {}
        failed: dict[int, bytes] = {}
        parallelism = self.options.parallelism
        with cf.ThreadPoolExecutor(parallelism, thread_name_prefix="spotfire-upload") as pool:
            try:
                for data in chunks:
                    self._check_abort()
                    number += 1
                    self._check_chunk_number(number)
                    consumed += len(data)
                    while len(inflight) >= parallelism:
                        self._collect(job, inflight, failed, cf.FIRST_COMPLETED)
                    if failed:
                        self._recover(job, pool, inflight, failed)
                    turn = whole.next_turn()
                    inflight[pool.submit(self._send_first, job, number, data, whole, turn)] = (number, data)
                    del data
                self.source.check_complete(consumed)
                self._recover(job, pool, inflight, failed)
            except BaseException:
                self._abort.set()  # in-flight sends finish, queued ones do not start
                for fut in inflight:
                    fut.cancel()
                raise
        self._verify_held(job, number)
        if whole.hashed != consumed:  # every first send hashed its chunk (only an abort skips it)
            raise SpotfireError(
                f"internal error: {whole.hashed} of {consumed} bytes went into the sha256 of "
                f"{self.upload.library_path!r}; the job is cancelled."
            )
        return whole.hexdigest(), consumed, number

    def _check_chunk_number(self, number: int) -> None:
        if number > MAX_CHUNKS:
            raise SpotfireDataError(
                f"{self.source.name} needs more than {MAX_CHUNKS} chunks of {self.options.chunk_size} bytes; "
                "raise chunk_size."
            )

    def _send_first(self, job: UploadJob, number: int, data: bytes, whole: _OrderedHash, turn: _Turn) -> None:
        """First send of a chunk (in a sender thread), then its turn in the whole-item sha256.

        The chunk's own digests (``Content-MD5``, ``Digest``) and its share of the whole sha256
        are computed here, not on the task's main thread: hashlib releases the GIL on large
        buffers, so they run alongside the SBDF writer. The whole hash takes the chunks in order
        (chunk N waits until N-1 was added, which was submitted earlier and so has started).
        """
        try:
            self._send_one(job, number, data)
        finally:
            whole.update_in_turn(turn, data, self._abort)

    def _send_one(self, job: UploadJob, number: int, data: bytes) -> None:
        self._check_abort()
        self.hook.upload_chunk(job, number, data)

    def _collect(self, job: UploadJob, inflight: InFlight, failed: dict[int, bytes], how: str) -> None:
        """Wait for sends; acknowledge successes, keep retryable failures in ``failed``, raise others."""
        done, _ = cf.wait(inflight, return_when=how)
        for fut in done:
            number, data = inflight.pop(fut)
            exc = fut.exception()
            if exc is None:
                self._ack(number, len(data))
            elif self.hook.retry_policy.is_retryable(exc, idempotent=True):
                log.warning("Chunk %d of upload job %s failed after retries: %s", number, job.job_id, exc)
                failed[number] = data
            else:
                raise exc

    def _recover(
        self, job: UploadJob, pool: cf.ThreadPoolExecutor, inflight: InFlight, failed: dict[int, bytes]
    ) -> None:
        """Drain the sends; then, while chunks failed, ask the job status and re-send what it lacks."""
        for round_no in range(1, RESUME_ROUNDS + 2):
            while inflight:
                self._collect(job, inflight, failed, cf.ALL_COMPLETED)
            if not failed:
                return
            if round_no > RESUME_ROUNDS:
                break
            status = self.hook.get_upload_status(job)
            self._check_status_open(status)
            held = set(status.uploaded_chunks or ())
            for number in sorted(held.intersection(failed)):  # stored, only the answer was lost
                self._recovered.add(number)
                self._ack(number, len(failed.pop(number)))
            if failed:
                log.warning(
                    "Resuming upload job %s (round %d/%d): re-sending chunk(s) %s, which the server lacks.",
                    job.job_id,
                    round_no,
                    RESUME_ROUNDS,
                    sorted(failed),
                )
            for number in sorted(failed):
                self._recovered.add(number)
                data = failed.pop(number)
                inflight[pool.submit(self._send_one, job, number, data)] = (number, data)
        raise self._job_error(
            job.job_id,
            f"still misses chunk(s) {sorted(failed)} after {RESUME_ROUNDS} resume rounds; the server keeps "
            "failing. The job is cancelled; retry the task later.",
        )

    def _ack(self, number: int, size: int) -> None:
        if number not in self._acked:
            self._acked[number] = size
            self._bytes_acked += size
        if self.progress is not None:
            self.progress(
                UploadProgress(
                    bytes_sent=self._bytes_acked,
                    total_bytes=self.source.size,
                    chunks_sent=len(self._acked),
                    total_chunks=self.total_chunks,
                    elapsed=time.monotonic() - self._started,
                )
            )

    def _verify_held(self, job: UploadJob, last: int) -> None:
        """Before finishing: the server holds every chunk 1..last (when it reports them)."""
        status = self.hook.get_upload_status(job)
        self._check_status_open(status)
        if status.uploaded_chunks is None:
            return
        missing = sorted(set(range(FIRST_CHUNK, last + 1)) - set(status.uploaded_chunks))
        if missing:
            raise self._job_error(
                job.job_id,
                f"lacks chunk(s) {missing[:20]} that the server had acknowledged; finishing would write a "
                "corrupt item, so the job is cancelled. Retry the task.",
            )

    def _check_status_open(self, status: UploadJob) -> None:
        if status.cancelled_at:
            raise self._job_error(
                status.job_id,
                f"was cancelled on the server at {status.cancelled_at} (by someone else) before it "
                "finished. Retry the task.",
                status="cancelled",
            )

    def _job_error(self, job_id: str, what: str, status: str = "open") -> SpotfireJobError:
        return SpotfireJobError(
            f"Upload job {job_id} for {self.upload.library_path!r} {what}", job_id=job_id, status=status
        )

    # ---- finish ----------------------------------------------------------------------------
    def _finish(self, job: UploadJob) -> UploadJob:
        last: BaseException | None = None
        for attempt in range(1, FINISH_ATTEMPTS + 1):
            self._check_abort()
            try:
                done = self.hook.finish_upload_job(job)
            except Exception as exc:
                if not self.hook.retry_policy.is_retryable(exc, idempotent=True):
                    explained = self._explain_finish(job, exc)
                    if explained is exc:
                        raise
                    raise explained from exc
                last = exc
                status = self.hook.get_upload_status(job)  # did the finish happen after all?
                self._check_status_open(status)
                if status.finished_at:
                    return status
                log.warning(
                    "Finishing upload job %s failed (%s); retry %d/%d.",
                    job.job_id,
                    exc,
                    attempt,
                    FINISH_ATTEMPTS,
                )
                time.sleep(min(getattr(exc, "retry_after", None) or 1.0, 30.0))
                continue
            if done.finished_at or not self.options.wait_finished:
                return done
            return self._wait_finished(done)
        raise self._job_error(
            job.job_id,
            f"could not be finished after {FINISH_ATTEMPTS} attempts ({last}); it is cancelled. Retry the "
            "task later.",
        )

    def _wait_finished(self, job: UploadJob) -> UploadJob:
        deadline = time.monotonic() + self.options.finish_timeout
        while True:
            self._check_abort()
            status = self.hook.get_upload_status(job)
            self._check_status_open(status)
            if status.finished_at:
                return status
            if time.monotonic() > deadline:
                raise SpotfireTimeoutError(
                    f"Upload job {job.job_id} was not finished by the server {self.options.finish_timeout:.0f}s "
                    "after the finish request; it is cancelled.",
                    job_id=job.job_id,
                    status="open",
                )
            time.sleep(self.options.poll_interval)

    def _explain_finish(self, job: UploadJob, exc: Exception) -> Exception:
        if isinstance(exc, SpotfireApiError) and exc.status_code < 500:
            detail = (exc.description or str(exc)).rstrip(".")
            code = f" {exc.code}" if exc.code else ""
            return SpotfireJobError(
                f"Spotfire refused to finish upload job {job.job_id} for {self.upload.library_path!r}: "
                f"{detail} (HTTP {exc.status_code}{code}). No library item was written; retry the task.",
                job_id=job.job_id,
                status="failed",
            )
        return exc


__all__ = ["FINISH_ATTEMPTS", "RESUME_ROUNDS", "ChunkedUpload", "UploadClient", "UploadResult"]
