"""Library REST API v1 (SBDF upload): requests, response models and the hook methods built on them.

Every endpoint of ``/spotfire/api/rest/library/v1/upload`` is described once, as an
:class:`~airflow_provider_spotfire.api.base.ApiRequest` builder; :class:`LibraryHookMixin` (sync)
and :class:`LibraryAsyncHookMixin` (async: status and cancel, for triggers) just send them.
:meth:`LibraryHookMixin.upload_sbdf_file` drives a whole upload (:class:`SbdfFileUpload`).

Decisions the spec leaves open:

* **HATEOAS links.** Calls on a job follow the links of the server's ``UploadResponse``: the
  ``...LinkRel`` link resolved against the connection first, the ``...LinkAbs`` link only when it
  is on the connection's origin (the bearer token goes along), and the documented path
  ``rest/library/v1/upload/{jobId}`` only when the server sent neither.
* **Chunks are idempotent by number.** Chunks are numbered from 1; re-sending chunk *N* replaces
  chunk *N* on the server, so a chunk POST is retried after 429/5xx answers and dropped
  connections. Every chunk carries ``Content-Length``, ``Content-MD5`` and
  ``Digest: SHA-256=...`` (RFC 1864 / RFC 3230) computed from the bytes actually sent.
* **Creating a job is not repeated** after the request may have reached the server (a read
  timeout or a connection dropped after sending): the answer, and with it the job id, is lost,
  so the client could not cancel that job and a blind retry would open a second one. It is
  retried only when the server certainly did not act (429/503 refusals, connection refused).
  The lost job holds no library item (items appear only when a job is finished) but counts
  against the server's open-job limit until the server discards it; the error says so.
* **Finishing is confirmed, not repeated blindly.** When the finish request fails in a way that
  may hide success (dropped connection, 5xx), the job status decides: ``finishedAt`` set means
  done; otherwise the finish is sent again.
* **Resume.** A chunk that still fails after the transport's retries pauses sending; the job
  status (``uploadedChunks``) then says which chunks the server holds and only the missing ones
  are sent again (a few rounds), never the whole file.
* **No orphan jobs.** Everything that can be checked locally (the file is SBDF and not empty,
  the library path, title, chunk size, parallelism, keywords) is checked before the job is
  created; any failure after creation (including an interrupt or ``on_kill``) cancels the job.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._connection import SpotfireConnectionConfig
from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.base import ApiRequest
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireBadRequestError,
    SpotfireConfigurationError,
    SpotfireConflictError,
    SpotfireError,
    SpotfireJobError,
    SpotfireLimitExceededError,
    SpotfireNotFoundError,
    SpotfirePermissionError,
    SpotfireTimeoutError,
    SpotfireTLSError,
    SpotfireTransportError,
    SpotfireUnsupportedMediaTypeError,
)
from airflow_provider_spotfire.hooks.base import SpotfireAsyncHookBase, SpotfireHookBase

log = logging.getLogger(__name__)

UPLOAD_API = "rest/library/v1/upload"
SBDF_ITEM_TYPE = "spotfire.sbdf"
UPLOAD_SCOPES: tuple[str, ...] = (S.LIBRARY_UPLOAD,)
FIRST_CHUNK = 1
MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * MIB
DEFAULT_PARALLELISM = 3
MAX_PARALLELISM = 16
MAX_CHUNKS = 2**31 - 1
RESUME_ROUNDS = 5
FINISH_ATTEMPTS = 5
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_FINISH_TIMEOUT = 900.0

JobState = Literal["open", "finished", "cancelled"]


# --------------------------------------------------------------------------------------------------
# Input validation (everything that can be checked before a job exists)
# --------------------------------------------------------------------------------------------------
def split_library_path(library_path: Any) -> tuple[str, str]:
    """``/Airflow/Reports/sales`` → (``/Airflow/Reports``, ``sales``); one clear error when invalid."""
    parts = validate.library_path(library_path)[1:].split("/")
    title = parts[-1]
    parent = "/" + "/".join(parts[:-1]) if len(parts) > 1 else "/"
    return parent, title


def normalize_keywords(keywords: Any) -> list[str] | None:
    """``None``, a list of strings, or one comma-separated string → list of non-empty keywords."""
    return validate.keywords(keywords)


def _check_description(description: Any) -> str | None:
    return validate.description(description)


def validate_chunking(chunk_size: Any, parallelism: Any) -> tuple[int, int]:
    return validate.chunk_size(chunk_size), validate.parallelism(parallelism)


# --------------------------------------------------------------------------------------------------
# Request and response models
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LibraryUpload:
    """The ``LibraryUpload`` body of "Create upload job": the item and what will be sent."""

    parent_path: str
    title: str
    overwrite: bool = False
    description: str | None = None
    keywords: tuple[str, ...] | None = None
    number_of_bytes: int | None = None
    number_of_chunks: int | None = None

    @property
    def library_path(self) -> str:
        """Full library path of the item."""
        return f"/{self.title}" if self.parent_path == "/" else f"{self.parent_path}/{self.title}"

    def to_json(self) -> dict[str, Any]:
        """The ``{"data": LibraryUpload}`` envelope."""
        item: dict[str, Any] = {"title": self.title, "parentPath": self.parent_path, "type": SBDF_ITEM_TYPE}
        if self.description is not None:
            item["description"] = self.description
        if self.keywords is not None:
            item["keywords"] = list(self.keywords)
        data: dict[str, Any] = {"item": item, "overwriteIfExists": bool(self.overwrite)}
        if self.number_of_bytes is not None:
            data["numberOfBytes"] = self.number_of_bytes
        if self.number_of_chunks is not None:
            data["numberOfChunks"] = self.number_of_chunks
        return {"data": data}


_LINK_FIELDS = {
    "upload": ("uploadLinkBaseRel", "uploadLinkBaseAbs"),
    "status": ("getStatusLinkRel", "getStatusLinkAbs"),
    "cancel": ("cancelLinkRel", "cancelLinkAbs"),
    "finish": ("finishLinkRel", "finishLinkAbs"),
}
LinkKind = Literal["upload", "status", "cancel", "finish"]


@dataclass(frozen=True)
class UploadJob:
    """An upload job as the server last described it (``UploadResponse``), with its HATEOAS links.

    ``uploaded_chunks`` is ``None`` when the server did not report the field (it is optional).
    """

    job_id: str
    uploaded_chunks: tuple[int, ...] | None = None
    finished_at: str | None = None
    cancelled_at: str | None = None
    links: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def state(self) -> JobState:
        """``finished``, ``cancelled`` or ``open``."""
        if self.finished_at:
            return "finished"
        if self.cancelled_at:
            return "cancelled"
        return "open"

    def link(self, kind: LinkKind, config: SpotfireConnectionConfig) -> str:
        """The link for ``kind``: Rel, else Abs on the connection's origin, else the documented path."""
        rel_name, abs_name = _LINK_FIELDS[kind]
        rel = self.links.get(rel_name)
        if rel:
            return rel
        absolute = self.links.get(abs_name)
        if absolute and _same_origin(absolute, config.base_url):
            return absolute
        if absolute:
            log.warning(
                "Ignoring %s %s: it is not on the connection's origin %s; using the documented path.",
                abs_name,
                urlsplit(absolute).netloc,
                config.base_url,
            )
        path = f"{UPLOAD_API}/{quote(self.job_id, safe='')}"
        return path + "/finish" if kind == "finish" else path

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (trigger events, XCom)."""
        return {
            "job_id": self.job_id,
            "state": self.state,
            "uploaded_chunks": list(self.uploaded_chunks) if self.uploaded_chunks is not None else None,
            "finished_at": self.finished_at,
            "cancelled_at": self.cancelled_at,
        }

    @classmethod
    def from_json(cls, body: Any, *, job_id: str | None = None) -> UploadJob:
        """Parse an ``UploadResponse`` forgivingly: envelope or bare object, any key casing, extra keys."""
        data = body
        if isinstance(body, Mapping):
            inner = _get(body, "data")
            if isinstance(inner, Mapping):
                data = inner
        if not isinstance(data, Mapping):
            raise SpotfireError(
                f"Spotfire answered an upload request with {type(body).__name__}, "
                "not an UploadResponse object."
            )
        links = {name: str(v) for pair in _LINK_FIELDS.values() for name in pair if (v := _get(data, name))}
        found = _get(data, "jobId") or _get(data, "id") or _job_id_from_links(links) or job_id
        if not found:
            raise SpotfireError(
                "Spotfire's UploadResponse has neither a job id nor job links; cannot follow the job."
            )
        chunks_raw = _get(data, "uploadedChunks")
        chunks: tuple[int, ...] | None = None
        if isinstance(chunks_raw, list):
            chunks = tuple(
                sorted(
                    {int(c) for c in chunks_raw if isinstance(c, int | str) and str(c).lstrip("-").isdigit()}
                )
            )
        return cls(
            job_id=str(found),
            uploaded_chunks=chunks,
            finished_at=_text(_get(data, "finishedAt")),
            cancelled_at=_text(_get(data, "cancelledAt")),
            links=links,
            raw=dict(data),
        )


UploadJobRef = UploadJob | str


def _get(data: Mapping[str, Any], name: str) -> Any:
    if name in data:
        return data[name]
    low = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == low:
            return value
    return None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _job_id_from_links(links: Mapping[str, str]) -> str | None:
    for name in (
        "getStatusLinkRel",
        "getStatusLinkAbs",
        "cancelLinkRel",
        "cancelLinkAbs",
        "uploadLinkBaseRel",
    ):
        link = links.get(name)
        if link:
            segment = urlsplit(link).path.rstrip("/").rpartition("/")[2]
            if segment and segment != "upload":
                return unquote(segment)
    finish = links.get("finishLinkRel") or links.get("finishLinkAbs")
    if finish:
        parts = urlsplit(finish).path.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-1] == "finish":
            return unquote(parts[-2])
    return None


def _same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _job_link(job: UploadJobRef, kind: LinkKind, config: SpotfireConnectionConfig) -> str:
    return (job if isinstance(job, UploadJob) else UploadJob(job_id=str(job))).link(kind, config)


def _job_id(job: UploadJobRef) -> str:
    return job.job_id if isinstance(job, UploadJob) else str(job)


def _parser(job_id: str | None) -> Callable[[HttpResponse], UploadJob]:
    def parse(response: HttpResponse) -> UploadJob:
        try:
            body = response.json()
        except ValueError:
            raise SpotfireError(
                f"Spotfire answered an upload request with {response.status_code} "
                "and a body that is not JSON."
            ) from None
        return UploadJob.from_json(body, job_id=job_id)

    return parse


def chunk_digests(data: bytes) -> tuple[str, str]:
    """(``Content-MD5`` value, ``Digest`` value) of one chunk: base64 MD5 and ``SHA-256=<base64>``."""
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    return md5, f"SHA-256={sha}"


def _with_query(link: str, **params: str) -> tuple[str, dict[str, str]]:
    """Split ``link`` into (link without query, query params) with ``params`` set (an upload link
    base may come with ``?chunk=`` waiting for a value)."""
    parts = urlsplit(link)
    query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params}
    query.update(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", parts.fragment)), query


# --------------------------------------------------------------------------------------------------
# Request builders (written once; the sync and async hooks only send them)
# --------------------------------------------------------------------------------------------------
def build_create_upload_job(upload: LibraryUpload) -> ApiRequest[UploadJob]:
    """PUT ``rest/library/v1/upload``: create the job (not repeated once it may have reached the server)."""
    return ApiRequest(
        "PUT",
        UPLOAD_API,
        UPLOAD_SCOPES,
        parse=_parser(None),
        json=upload.to_json(),
        headers={"Content-Type": "application/json"},
        idempotent=False,
    )


def build_upload_chunk(
    job: UploadJobRef,
    config: SpotfireConnectionConfig,
    chunk: int,
    data: bytes,
    *,
    finish: bool = False,
    content_md5: str | None = None,
    digest: str | None = None,
) -> ApiRequest[UploadJob]:
    """POST the upload link with ``?chunk=N``: one chunk with its length and digests (idempotent by number).

    ``content_md5``/``digest`` default to the digests of ``data``; pass other values only to test
    the server's verification.
    """
    if content_md5 is None or digest is None:
        md5, sha = chunk_digests(data)
        content_md5 = md5 if content_md5 is None else content_md5
        digest = sha if digest is None else digest
    params = {"chunk": str(chunk)}
    if finish:
        params["finish"] = "true"
    url, query = _with_query(_job_link(job, "upload", config), **params)
    return ApiRequest(
        "POST",
        url,
        UPLOAD_SCOPES,
        parse=_parser(_job_id(job)),
        params=query,
        content=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(data)),
            "Content-MD5": content_md5,
            "Digest": digest,
        },
        idempotent=True,
    )


def build_get_upload_status(job: UploadJobRef, config: SpotfireConnectionConfig) -> ApiRequest[UploadJob]:
    """GET the job's status link."""
    return ApiRequest(
        "GET", _job_link(job, "status", config), UPLOAD_SCOPES, parse=_parser(_job_id(job)), idempotent=True
    )


def build_cancel_upload_job(job: UploadJobRef, config: SpotfireConnectionConfig) -> ApiRequest[UploadJob]:
    """DELETE the job's cancel link (cancelling a cancelled job changes nothing, so it is retried)."""
    return ApiRequest(
        "DELETE",
        _job_link(job, "cancel", config),
        UPLOAD_SCOPES,
        parse=_parser(_job_id(job)),
        idempotent=True,
    )


def build_finish_upload_job(job: UploadJobRef, config: SpotfireConnectionConfig) -> ApiRequest[UploadJob]:
    """POST the job's finish link (confirmed through the status when the answer is lost)."""
    return ApiRequest(
        "POST",
        _job_link(job, "finish", config),
        UPLOAD_SCOPES,
        parse=_parser(_job_id(job)),
        json={},
        headers={"Content-Type": "application/json"},
        idempotent=False,
    )


def explain_create_error(exc: SpotfireApiError, upload: LibraryUpload, client_id: str) -> SpotfireApiError:
    """The same error class with a message naming the cause and the fix for a refused create."""
    path, parent = upload.library_path, upload.parent_path
    said = f" (Spotfire: {exc.status_code} {exc.code or ''}".rstrip() + (
        f", {exc.description.rstrip('.')})" if exc.description else ")"
    )
    message: str | None = None
    if isinstance(exc, SpotfireNotFoundError):
        message = (
            f"Library folder {parent!r} does not exist, or API client {client_id!r} cannot see it. "
            f"Create the folder in the Spotfire library (or fix library_path {path!r}) and give the client "
            "read and write access to it."
        )
    elif isinstance(exc, SpotfireConflictError):
        message = (
            f"Library item {path!r} already exists. Pass overwrite=True to replace it, or choose another "
            "library_path."
        )
    elif isinstance(exc, SpotfirePermissionError) and exc.code not in ("invalid_scope", "insufficient_scope"):
        message = (
            f"API client {client_id!r} may not write to library folder {parent!r}. Grant the client (or a "
            "group it belongs to) write access to that folder, or upload to a folder it can write to."
        )
    elif isinstance(exc, SpotfireLimitExceededError) and exc.status_code == 413:
        size = f"{upload.number_of_bytes} bytes" if upload.number_of_bytes is not None else "the file"
        message = (
            f"Uploading {size} to {path!r} exceeds the server's maximum upload size. Upload less data, or "
            "ask the Spotfire administrator to raise the limit (config-web-service-api)."
        )
    elif isinstance(exc, SpotfireLimitExceededError):
        message = (
            f"Spotfire refused to start another upload job for {path!r}: too many upload jobs are open for "
            f"API client {client_id!r} or the server, even after retrying. Run fewer uploads at once (e.g. "
            "an Airflow pool), or ask the administrator to raise the job limits."
        )
    elif isinstance(exc, SpotfireUnsupportedMediaTypeError):
        message = (
            f"Spotfire does not accept this content for {path!r}; only SBDF files ({SBDF_ITEM_TYPE}) "
            "can be uploaded."
        )
    elif isinstance(exc, SpotfireBadRequestError):
        message = (
            f"Spotfire rejected the upload job for {path!r} as invalid. Check library_path, description "
            "and keywords."
        )
    if message is None:
        return exc
    return exc.with_message(message + said + ".")


def _lost_create_error(exc: SpotfireTransportError, upload: LibraryUpload) -> SpotfireTransportError:
    err = SpotfireTransportError(
        f"The connection broke while creating the upload job for {upload.library_path!r}, after the request "
        "was sent: the server may have opened a job whose id never reached us, so it is not retried (a retry "
        "could open a second job). No library item was written; such a job holds no item but counts "
        f"against the server's open-job limit until the server discards it. Retry the task. Cause: {exc}"
    )
    err.request_sent = True  # type: ignore[attr-defined]
    return err


# --------------------------------------------------------------------------------------------------
# Results and progress
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadProgress:
    """How far an upload is: bytes and chunks acknowledged by the server, elapsed seconds."""

    bytes_sent: int
    total_bytes: int
    chunks_sent: int
    total_chunks: int
    elapsed: float

    @property
    def fraction(self) -> float:
        """0.0 … 1.0."""
        return self.bytes_sent / self.total_bytes if self.total_bytes else 1.0

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes_sent / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class UploadResult:
    """What :meth:`LibraryHookMixin.upload_sbdf_file` did (``finished_at`` is None if not waited for)."""

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


def is_transient(exc: BaseException) -> bool:
    """Failures worth another try later: dropped connections, 429 and 5xx (not TLS, not 4xx)."""
    if isinstance(exc, SpotfireTLSError):
        return False
    if isinstance(exc, SpotfireTransportError):
        return True
    return isinstance(exc, SpotfireApiError) and (exc.status_code == 429 or exc.status_code >= 500)


class UploadAborted(SpotfireJobError):
    """The upload was stopped from outside (task killed or timed out); the job is cancelled."""


# --------------------------------------------------------------------------------------------------
# The whole-file upload
# --------------------------------------------------------------------------------------------------
class SbdfFileUpload:
    """Uploads one SBDF file through an upload job: stream, digest, parallel chunks, resume, finish.

    Memory stays flat: at most ``parallelism`` chunks (plus the one being read) are in memory. Call
    :meth:`abort` from another thread (``on_kill``) to stop it; the job is then cancelled.
    """

    def __init__(
        self,
        hook: LibraryHookMixin,
        path: str | os.PathLike[str],
        library_path: str,
        *,
        overwrite: bool = False,
        description: str | None = None,
        keywords: Sequence[str] | str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallelism: int = DEFAULT_PARALLELISM,
        progress: Callable[[UploadProgress], None] | None = None,
        on_job_created: Callable[[UploadJob], None] | None = None,
        wait_finished: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        finish_timeout: float = DEFAULT_FINISH_TIMEOUT,
    ) -> None:
        from airflow_provider_spotfire._sbdf_file import assert_sbdf_file

        self.hook = hook
        self.path = os.fsdecode(os.fspath(path))
        self.parent_path, self.title = split_library_path(library_path)
        self.chunk_size, self.parallelism = validate_chunking(chunk_size, parallelism)
        assert_sbdf_file(self.path)
        self.size = os.path.getsize(self.path)
        self.total_chunks = max(1, math.ceil(self.size / self.chunk_size))
        if self.total_chunks > MAX_CHUNKS:
            raise SpotfireConfigurationError(
                f"{self.total_chunks} chunks of {self.chunk_size} bytes exceed the {MAX_CHUNKS} chunks "
                "one job can hold; raise chunk_size."
            )
        kws = normalize_keywords(keywords)
        self.upload = LibraryUpload(
            parent_path=self.parent_path,
            title=self.title,
            overwrite=bool(overwrite),
            description=_check_description(description),
            keywords=tuple(kws) if kws is not None else None,
            number_of_bytes=self.size,
            number_of_chunks=self.total_chunks,
        )
        self.progress = progress
        self.on_job_created = on_job_created
        self.wait_finished = wait_finished
        self.poll_interval = poll_interval
        self.finish_timeout = finish_timeout
        self.job: UploadJob | None = None
        self._abort = threading.Event()
        self._acked: dict[int, int] = {}  # chunk number -> size, acknowledged by the server
        self._bytes_acked = 0
        self._started = 0.0
        self._resumed = 0

    # ---- control ---------------------------------------------------------------------------
    def abort(self) -> None:
        """Stop sending (thread-safe); :meth:`run` then cancels the job and raises :class:`UploadAborted`."""
        self._abort.set()

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise UploadAborted(
                f"The upload to {self.upload.library_path!r} was stopped (task killed or timed out); "
                "its upload job is cancelled.",
                job_id=self.job.job_id if self.job else None,
                status="cancelled",
            )

    # ---- main ------------------------------------------------------------------------------
    def run(self) -> UploadResult:
        """Create the job, send every chunk, finish; cancel the job on any failure."""
        hook = self.hook
        _ = hook.transport  # build the shared session before worker threads use it
        self._check_abort()
        self._started = time.monotonic()
        job = hook.create_upload_job_for(self.upload)
        self.job = job
        log.info(
            "Upload job %s created for %s: %d bytes in %d chunk(s) of up to %d bytes, %d in parallel.",
            job.job_id,
            self.upload.library_path,
            self.size,
            self.total_chunks,
            self.chunk_size,
            self.parallelism,
        )
        try:
            if self.on_job_created is not None:
                self.on_job_created(job)
            sha256 = self._send_all(job)
            finished = self._finish(job)
        except BaseException as exc:
            self._cancel_after_failure(job, exc)
            raise
        return UploadResult(
            library_path=self.upload.library_path,
            job_id=job.job_id,
            bytes=self.size,
            chunks=self.total_chunks,
            sha256=sha256,
            finished_at=finished.finished_at,
            elapsed=time.monotonic() - self._started,
            resumed_chunks=self._resumed,
        )

    # ---- chunks ----------------------------------------------------------------------------
    def _send_one(self, job: UploadJob, number: int, data: bytes) -> tuple[int, int]:
        self._check_abort()
        self.hook.upload_chunk(job, number, data)
        return number, len(data)

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(
                UploadProgress(
                    bytes_sent=self._bytes_acked,
                    total_bytes=self.size,
                    chunks_sent=len(self._acked),
                    total_chunks=self.total_chunks,
                    elapsed=time.monotonic() - self._started,
                )
            )

    def _send_chunks(
        self,
        job: UploadJob,
        chunks: Iterable[tuple[int, bytes]],
        pool: cf.ThreadPoolExecutor,
        *,
        resuming: bool = False,
    ) -> BaseException | None:
        """Send ``chunks`` with at most ``parallelism`` in flight. Returns the first transient failure
        (sending then stops; the caller resumes) or None; raises permanent failures."""
        pending: dict[cf.Future[tuple[int, int]], int] = {}
        transient: BaseException | None = None

        def collect(how: str) -> None:
            nonlocal transient
            done, _ = cf.wait(pending, return_when=how)
            for fut in done:
                number = pending.pop(fut)
                exc = fut.exception()
                if exc is None:
                    n, size = fut.result()
                    if n not in self._acked:
                        self._acked[n] = size
                        self._bytes_acked += size
                    if resuming:
                        self._resumed += 1
                    self._report()
                elif is_transient(exc):
                    log.warning("Chunk %d of upload job %s failed after retries: %s", number, job.job_id, exc)
                    transient = transient or exc
                else:
                    raise exc

        try:
            for number, data in chunks:
                self._check_abort()
                if transient is not None:
                    continue  # keep consuming: the caller's reader may be hashing the whole file
                while len(pending) >= self.parallelism:
                    collect(cf.FIRST_COMPLETED)
                if transient is None:
                    pending[pool.submit(self._send_one, job, number, data)] = number
                del data
            while pending:
                collect(cf.FIRST_COMPLETED)
        except BaseException:
            self._abort.set()  # in-flight sends finish, queued ones do not start
            for fut in pending:
                fut.cancel()
            raise
        return transient

    def _read_sequential(self, fh: Any, whole: Any) -> Iterable[tuple[int, bytes]]:
        for number in range(FIRST_CHUNK, FIRST_CHUNK + self.total_chunks):
            data = fh.read(self.chunk_size)
            whole.update(data)
            yield number, data

    def _read_some(self, fd: int, numbers: Iterable[int]) -> Iterable[tuple[int, bytes]]:
        for number in numbers:
            offset = (number - FIRST_CHUNK) * self.chunk_size
            want = min(self.chunk_size, self.size - offset)
            parts: list[bytes] = []
            got = 0
            while got < want:
                piece = os.pread(fd, want - got, offset + got)
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
            yield number, b"".join(parts) if len(parts) != 1 else parts[0]

    def _send_all(self, job: UploadJob) -> str:
        whole = hashlib.sha256()
        expected = set(range(FIRST_CHUNK, FIRST_CHUNK + self.total_chunks))
        with (
            open(self.path, "rb") as fh,
            cf.ThreadPoolExecutor(self.parallelism, thread_name_prefix="spotfire-upload") as pool,
        ):
            failure = self._send_chunks(job, self._read_sequential(fh, whole), pool)
            if fh.tell() != self.size:
                raise SpotfireError(
                    f"{self.path!r} changed size during the upload ({self.size} bytes expected, "
                    f"{fh.tell()} read); do not modify a file while it is uploaded."
                )
            for round_no in range(1, RESUME_ROUNDS + 1):
                status = self.hook.get_upload_status(job)
                self._check_status_open(status)
                held = set(status.uploaded_chunks) if status.uploaded_chunks is not None else set(self._acked)
                missing = sorted(expected - held)
                if not missing:
                    return whole.hexdigest()
                log.warning(
                    "Resuming upload job %s (round %d/%d): the server holds %d of %d chunks; re-sending %d.",
                    job.job_id,
                    round_no,
                    RESUME_ROUNDS,
                    len(expected & held),
                    len(expected),
                    len(missing),
                )
                for n in missing:
                    if n in self._acked:
                        self._bytes_acked -= self._acked.pop(n)
                failure = self._send_chunks(job, self._read_some(fh.fileno(), missing), pool, resuming=True)
        raise SpotfireJobError(
            f"Upload job {job.job_id} for {self.upload.library_path!r} still misses chunks after "
            f"{RESUME_ROUNDS} resume rounds; the server keeps failing ({failure}). The job is cancelled; "
            "retry the task later.",
            job_id=job.job_id,
            status="open",
        )

    def _check_status_open(self, status: UploadJob) -> None:
        if status.cancelled_at:
            raise SpotfireJobError(
                f"Upload job {status.job_id} for {self.upload.library_path!r} was cancelled on the server at "
                f"{status.cancelled_at} (by someone else) before it finished. Retry the task.",
                job_id=status.job_id,
                status="cancelled",
            )

    # ---- finish ----------------------------------------------------------------------------
    def _finish(self, job: UploadJob) -> UploadJob:
        last: BaseException | None = None
        for attempt in range(1, FINISH_ATTEMPTS + 1):
            self._check_abort()
            try:
                done = self.hook.finish_upload_job(job)
            except Exception as exc:
                if not is_transient(exc):
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
            if done.finished_at or not self.wait_finished:
                return done
            return self._wait_finished(done)
        raise SpotfireJobError(
            f"Upload job {job.job_id} for {self.upload.library_path!r} could not be finished after "
            f"{FINISH_ATTEMPTS} attempts ({last}); it is cancelled. Retry the task later.",
            job_id=job.job_id,
            status="open",
        )

    def _wait_finished(self, job: UploadJob) -> UploadJob:
        deadline = time.monotonic() + self.finish_timeout
        while True:
            self._check_abort()
            status = self.hook.get_upload_status(job)
            self._check_status_open(status)
            if status.finished_at:
                return status
            if time.monotonic() > deadline:
                raise SpotfireTimeoutError(
                    f"Upload job {job.job_id} was not finished by the server {self.finish_timeout:.0f}s "
                    "after the finish request; it is cancelled.",
                    job_id=job.job_id,
                    status="open",
                )
            time.sleep(self.poll_interval)

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

    # ---- cleanup ---------------------------------------------------------------------------
    def _cancel_after_failure(self, job: UploadJob, exc: BaseException) -> None:
        self._abort.set()
        cancel_upload_job_quietly(self.hook, job, reason=f"{type(exc).__name__}: {exc}")


def cancel_upload_job_quietly(hook: LibraryHookMixin, job: UploadJobRef, *, reason: str = "") -> bool:
    """Cancel ``job``; log instead of raising (used while another error is propagating). True if cancelled."""
    job_id = _job_id(job)
    try:
        hook.cancel_upload_job(job)
    except SpotfireNotFoundError:
        log.info(
            "Upload job %s is already gone on the server (failed or expired); nothing to cancel.", job_id
        )
        return False
    except SpotfireBadRequestError as exc:
        log.warning("Upload job %s could not be cancelled: %s", job_id, exc.description or exc)
        return False
    except Exception as exc:
        log.error(
            "Could not cancel upload job %s (%s); it stays open until the server expires it. It holds no "
            "library item.",
            job_id,
            exc,
        )
        return False
    log.warning("Cancelled upload job %s%s.", job_id, f" after: {reason}" if reason else "")
    return True


# --------------------------------------------------------------------------------------------------
# Hook mixins
# --------------------------------------------------------------------------------------------------
class LibraryHookMixin(SpotfireHookBase):
    """Library REST API v1 (SBDF upload) methods of the sync ``SpotfireHook``."""

    def create_upload_job(
        self,
        library_path: str,
        *,
        number_of_bytes: int | None = None,
        number_of_chunks: int | None = None,
        overwrite: bool = False,
        description: str | None = None,
        keywords: Sequence[str] | str | None = None,
    ) -> UploadJob:
        """Start an upload job for ``library_path`` (parent folder + title); refusals name cause and fix."""
        parent, title = split_library_path(library_path)
        kws = normalize_keywords(keywords)
        return self.create_upload_job_for(
            LibraryUpload(
                parent_path=parent,
                title=title,
                overwrite=overwrite,
                description=_check_description(description),
                keywords=tuple(kws) if kws is not None else None,
                number_of_bytes=number_of_bytes,
                number_of_chunks=number_of_chunks,
            )
        )

    def create_upload_job_for(self, upload: LibraryUpload) -> UploadJob:
        """Start an upload job from a prepared :class:`LibraryUpload`."""
        try:
            return self.call(build_create_upload_job(upload))
        except SpotfireApiError as exc:
            raise explain_create_error(exc, upload, self.config.client_id) from None
        except SpotfireTransportError as exc:
            if isinstance(exc, SpotfireTLSError) or not getattr(exc, "request_sent", True):
                raise
            raise _lost_create_error(exc, upload) from None

    def upload_chunk(self, job: UploadJobRef, chunk: int, data: bytes, *, finish: bool = False) -> UploadJob:
        """Send chunk number ``chunk`` (with Content-Length, Content-MD5 and Digest)."""
        return self.call(build_upload_chunk(job, self.config, chunk, data, finish=finish))

    def get_upload_status(self, job: UploadJobRef) -> UploadJob:
        """Status of a job: uploaded chunks, ``finishedAt``/``cancelledAt``."""
        return self.call(build_get_upload_status(job, self.config))

    def cancel_upload_job(self, job: UploadJobRef) -> UploadJob:
        """Cancel a job (its chunks are discarded; no item is written)."""
        return self.call(build_cancel_upload_job(job, self.config))

    def finish_upload_job(self, job: UploadJobRef) -> UploadJob:
        """Finish a job: the server combines the chunks into the library item."""
        return self.call(build_finish_upload_job(job, self.config))

    def upload_sbdf_file(
        self,
        path: str | os.PathLike[str],
        library_path: str,
        *,
        overwrite: bool = False,
        description: str | None = None,
        keywords: Sequence[str] | str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallelism: int = DEFAULT_PARALLELISM,
        progress: Callable[[UploadProgress], None] | None = None,
        on_job_created: Callable[[UploadJob], None] | None = None,
        wait_finished: bool = True,
    ) -> UploadResult:
        """Upload the SBDF file ``path`` to ``library_path`` (see :class:`SbdfFileUpload`)."""
        return SbdfFileUpload(
            self,
            path,
            library_path,
            overwrite=overwrite,
            description=description,
            keywords=keywords,
            chunk_size=chunk_size,
            parallelism=parallelism,
            progress=progress,
            on_job_created=on_job_created,
            wait_finished=wait_finished,
        ).run()


class LibraryAsyncHookMixin(SpotfireAsyncHookBase):
    """Library REST API v1 methods of the async ``SpotfireAsyncHook`` (status and cancel, for triggers)."""

    async def get_upload_status(self, job: UploadJobRef) -> UploadJob:
        """Async twin of :meth:`LibraryHookMixin.get_upload_status`."""
        return await self.call(build_get_upload_status(job, await self.aconfig()))

    async def cancel_upload_job(self, job: UploadJobRef) -> UploadJob:
        """Async twin of :meth:`LibraryHookMixin.cancel_upload_job`."""
        return await self.call(build_cancel_upload_job(job, await self.aconfig()))


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PARALLELISM",
    "FIRST_CHUNK",
    "SBDF_ITEM_TYPE",
    "LibraryAsyncHookMixin",
    "LibraryHookMixin",
    "LibraryUpload",
    "SbdfFileUpload",
    "UploadAborted",
    "UploadJob",
    "UploadProgress",
    "UploadResult",
    "build_cancel_upload_job",
    "build_create_upload_job",
    "build_finish_upload_job",
    "build_get_upload_status",
    "build_upload_chunk",
    "cancel_upload_job_quietly",
    "chunk_digests",
    "explain_create_error",
    "is_transient",
    "normalize_keywords",
    "split_library_path",
]
