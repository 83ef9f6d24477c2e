"""Library REST API v1 (upload) router: ``/spotfire/api/rest/library/v1/upload``.

Chunk bodies are streamed to files (never held in memory) while their digests are computed incrementally;
finishing assembles the chunks in ascending chunk-number order into a new content file and then makes the
library item appear (or change) atomically under the state lock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import os
import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from airflow_provider_spotfire.emulator.constants import (
    SBDF_MAGIC,
    SCOPE_LIBRARY_UPLOAD,
    TYPE_SBDF,
    UPLOAD_CANCELLED,
    UPLOAD_FAILED,
    UPLOAD_FINISHED,
    UPLOAD_OPEN,
)
from airflow_provider_spotfire.emulator.core import iso, new_id
from airflow_provider_spotfire.emulator.errors import ApiError
from airflow_provider_spotfire.emulator.library_store import (
    Chunk,
    LibraryItem,
    UploadJob,
    join_path,
    normalize_folder_path,
    unlink_all,
)
from airflow_provider_spotfire.emulator.oauth import Caller, base_url, get_state, require_scope
from airflow_provider_spotfire.emulator.state import EmulatorState

API_PATH = "/spotfire/api/rest/library/v1/upload"
_WRITE_BATCH = 1024 * 1024
_MAX_JSON_BYTES = 1024 * 1024
_INT32_MAX = 2**31 - 1

# RFC 3230 / RFC 5843 algorithm names (case-insensitive) -> hashlib name
DIGEST_ALGORITHMS = {"md5": "md5", "sha": "sha1", "sha-256": "sha256", "sha-512": "sha512"}

router = APIRouter(prefix=API_PATH, tags=["library-controller"])
LibraryCaller = Annotated[Caller, Depends(require_scope(SCOPE_LIBRARY_UPLOAD))]


# --- helpers
def parse_bool(raw: str | None, name: str, default: bool = False) -> bool:
    """Spring-style boolean query parameter (true/false/1/0/yes/no/on/off)."""
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ApiError("invalid_request", f"Invalid value for parameter {name}: {raw!r} (expected true or false)")


async def read_json(request: Request) -> Any:
    """Read and parse a JSON request body (415 for non-JSON content types, 400 for malformed JSON)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(
            "unsupported_mediatype", f"Unsupported content type {ctype}; expected application/json"
        )
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > _MAX_JSON_BYTES:
            raise ApiError("invalid_request", "The request body is too large")
    if not body.strip():
        raise ApiError("invalid_request", "The request body is missing")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("invalid_request", f"The request body is not valid JSON: {exc}") from exc


def upload_response(request: Request, job: UploadJob) -> dict[str, Any]:
    """The ``Envelope<UploadResponse>`` of a job, with HATEOAS links."""
    rel = f"{API_PATH}/{job.job_id}"
    abs_ = base_url(request) + rel
    data: dict[str, Any] = {
        "cancelLinkAbs": abs_,
        "cancelLinkRel": rel,
        "finishLinkAbs": abs_ + "/finish",
        "finishLinkRel": rel + "/finish",
        "getStatusLinkAbs": abs_,
        "getStatusLinkRel": rel,
        "uploadLinkBaseAbs": abs_,
        "uploadLinkBaseRel": rel,
        "uploadedChunks": sorted(job.chunks) if job.status != UPLOAD_CANCELLED else [],
    }
    if job.finished_at is not None:
        data["finishedAt"] = iso(job.finished_at)
    if job.cancelled_at is not None:
        data["cancelledAt"] = iso(job.cancelled_at)
    if get_state(request).config.extra_response_fields:
        data["createdAt"] = iso(job.created_at)
        data["serverVersion"] = "14.4.0 (emulator)"
    return {"data": data}


def _lookup(state: EmulatorState, caller: Caller, job_id: str) -> UploadJob:
    job = state.library.upload_jobs.get(job_id) or state.library.upload_jobs.get(job_id.lower())
    if job is None or job.client_id != caller.client_id or job.user_id != caller.user_id:
        raise ApiError(
            "job_unknown", f"The upload job {job_id} does not exist, or the client does not have access to it"
        )
    if job.status == UPLOAD_FAILED:
        reason = (job.failure or {}).get("description", "")
        raise ApiError("job_unknown", f"The upload job {job_id} has failed: {reason}")
    return job


def _discard_chunks(job: UploadJob) -> None:
    job.chunks.clear()
    shutil.rmtree(job.job_dir, ignore_errors=True)


def _fail(state: EmulatorState, job: UploadJob, code: str, description: str) -> ApiError:
    """Mark a job failed (under the lock), discard its chunks and return the error to raise."""
    job.status = UPLOAD_FAILED
    job.failure = {"code": code, "description": description}
    job.finishing = False
    _discard_chunks(job)
    state.count("uploads_failed")
    return ApiError(code, description)


def _optional_int(data: dict[str, Any], key: str, maximum: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (maximum and value > maximum):
        raise ApiError("invalid_request", f"{key} must be a non-negative integer")
    return value


def _target_checks(
    state: EmulatorState, caller: Caller, parent: str, title: str, overwrite: bool
) -> LibraryItem | None:
    """Folder exists/visible (404), writable (403), no conflict (409). Returns the item to overwrite."""
    if parent not in state.library.folders or not state.library.can_read(caller.user_id, parent):
        raise ApiError(
            "not_found",
            f"The folder {parent} was not found, or the client has insufficient library permissions",
        )
    if not state.library.can_write(caller.user_id, parent):
        raise ApiError("not_authorized", f"The client is not allowed to write to the library folder {parent}")
    path = join_path(parent, title)
    if path in state.library.folders:
        raise ApiError("already_exists", f"A folder already exists at {path}")
    existing = state.library.find_item(path, TYPE_SBDF)
    if existing is not None and not overwrite:
        raise ApiError("already_exists", f"The library item {path} already exists (use overwriteIfExists)")
    return existing


# --- create
@router.put("")
@router.put("/", include_in_schema=False)
async def create_upload_job(request: Request, caller: LibraryCaller) -> JSONResponse:
    """Create upload job (201 with UploadResponse)."""
    state = get_state(request)
    fields = _parse_library_upload(await read_json(request))
    with state.lock:
        _target_checks(state, caller, fields["parent_path"], fields["title"], fields["overwrite"])
        _check_job_limits(state, caller, fields["number_of_bytes"])
        job_id = new_id()
        job = UploadJob(
            job_id=job_id,
            client_id=caller.client_id,
            user_id=caller.user_id,
            created_at=state.now(),
            job_dir=state.library.new_job_dir(job_id),
            **fields,
        )
        state.library.upload_jobs[job_id] = job
        body_out = upload_response(request, job)
    return JSONResponse(body_out, status_code=201, headers={"Location": body_out["data"]["getStatusLinkAbs"]})


def _parse_library_upload(body: Any) -> dict[str, Any]:
    """The UploadJob fields of an ``Envelope<LibraryUpload>`` (400/415 ``ApiError`` when invalid)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ApiError("invalid_request", 'The request body must be an envelope {"data": LibraryUpload}')
    data = body["data"]
    fields = _parse_library_item(data.get("item"))
    fields["number_of_bytes"] = _optional_int(data, "numberOfBytes")
    fields["number_of_chunks"] = _optional_int(data, "numberOfChunks", _INT32_MAX)
    overwrite = data.get("overwriteIfExists")
    if overwrite is not None and not isinstance(overwrite, bool):
        raise ApiError("invalid_request", "overwriteIfExists must be a boolean")
    fields["overwrite"] = bool(overwrite)
    if fields["item_type"] != TYPE_SBDF:
        raise ApiError(
            "unsupported_mediatype",
            f"Unsupported library item type {fields['item_type']}; only {TYPE_SBDF} can be uploaded",
        )
    parent_raw = fields["parent_path"]
    fields["parent_path"] = normalize_folder_path(parent_raw)
    if fields["parent_path"] is None:
        raise ApiError("invalid_request", f"item.parentPath must be an absolute library path: {parent_raw!r}")
    return fields


def _parse_library_item(item: Any) -> dict[str, Any]:
    """Title, parent path (as sent), type, description and keywords of a LibraryItem."""
    if not isinstance(item, dict):
        raise ApiError("invalid_request", "data.item is required")
    title, parent_raw, item_type = item.get("title"), item.get("parentPath"), item.get("type")
    if not isinstance(title, str) or not title.strip():
        raise ApiError("invalid_request", "item.title is required and must not be empty")
    if "/" in title:
        raise ApiError("invalid_request", "item.title must not contain '/'")
    if not isinstance(parent_raw, str) or not parent_raw:
        raise ApiError("invalid_request", "item.parentPath is required")
    if not isinstance(item_type, str) or not item_type:
        raise ApiError("invalid_request", "item.type is required")
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        raise ApiError("invalid_request", "item.description must be a string")
    keywords = item.get("keywords")
    if keywords is not None and (
        not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords)
    ):
        raise ApiError("invalid_request", "item.keywords must be an array of strings")
    return {
        "title": title,
        "parent_path": parent_raw,
        "item_type": item_type,
        "description": description,
        "keywords": keywords,
    }


def _check_job_limits(state: EmulatorState, caller: Caller, number_of_bytes: int | None) -> None:
    """Declared size within the maximum (413), open jobs of the client and the server (429)."""
    cfg = state.config
    if number_of_bytes is not None and number_of_bytes > cfg.max_upload_bytes:
        raise ApiError(
            "limit_exceeded",
            f"numberOfBytes {number_of_bytes} exceeds the maximum upload size of {cfg.max_upload_bytes} bytes",
        )
    open_jobs = [j for j in state.library.upload_jobs.values() if j.status == UPLOAD_OPEN]
    if sum(1 for j in open_jobs if j.client_id == caller.client_id) >= cfg.max_jobs_per_client:
        raise ApiError(
            "rate_limit_exceeded",
            f"The client already has {cfg.max_jobs_per_client} ongoing upload jobs (maximum per client)",
        )
    if len(open_jobs) >= cfg.max_jobs_per_server:
        raise ApiError(
            "rate_limit_exceeded", f"The server already has {cfg.max_jobs_per_server} ongoing upload jobs"
        )


# --- chunk
def _expected_digests(request: Request) -> dict[str, bytes]:
    """Parse Content-MD5 (RFC 1864) and Digest (RFC 3230/5843); malformed values are bad_digest."""
    expected: dict[str, bytes] = {}

    def decode(value: str, alg: str, header: str) -> bytes:
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError("bad_digest", f"The {header} header is not valid base64") from exc
        if len(raw) != hashlib.new(alg).digest_size:
            raise ApiError("bad_digest", f"The {header} header has the wrong length for {alg}")
        return raw

    md5 = request.headers.get("content-md5")
    if md5 is not None:
        expected["md5"] = decode(md5, "md5", "Content-MD5")
    for header in request.headers.getlist("digest"):
        for part in header.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            alg = DIGEST_ALGORITHMS.get(name.strip().lower())
            if alg is None:
                continue  # RFC 3230: unsupported algorithms are ignored
            if not sep:
                raise ApiError("bad_digest", f"Malformed Digest header entry {part!r}")
            raw = decode(value, alg, f"Digest ({name.strip()})")
            if alg in expected and expected[alg] != raw:
                raise ApiError("bad_digest", f"Conflicting {name.strip()} digests in the request")
            expected[alg] = raw
    return expected


class _ChunkSink:
    """Writes a chunk to disk while hashing it; ``write`` runs in a worker thread, one call at a time."""

    def __init__(self, path: str, algorithms: set[str]) -> None:
        self.path = path
        self.fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.hashes = [hashlib.new(alg) for alg in sorted(algorithms)]
        self.algorithms = sorted(algorithms)
        self.size = 0
        self.first = b""

    def write(self, pieces: list[bytes]) -> None:
        """Write and hash the received pieces as they are (no joined copy; hashlib frees the GIL)."""
        for data in pieces:
            if len(self.first) < 8:
                self.first += data[: 8 - len(self.first)]
            self.fh.write(data)
            for h in self.hashes:
                h.update(data)
            self.size += len(data)

    def digests(self) -> dict[str, bytes]:
        return {alg: h.digest() for alg, h in zip(self.algorithms, self.hashes, strict=True)}

    def close(self) -> None:
        self.fh.close()

    def discard(self) -> None:
        self.fh.close()
        _remove(self.path)


async def _stream_to(request: Request, sink: _ChunkSink) -> None:
    """Stream the body into ``sink``: disk writes and hashing of one batch overlap receiving the next."""
    loop = asyncio.get_running_loop()
    outstanding: asyncio.Future[None] | None = None
    pending: list[bytes] = []
    pending_size = 0
    try:
        async for piece in request.stream():
            if not piece:
                continue
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= _WRITE_BATCH:
                if outstanding is not None:
                    await outstanding
                outstanding = loop.run_in_executor(None, sink.write, pending)
                pending, pending_size = [], 0
        if outstanding is not None:
            await outstanding
            outstanding = None
        if pending:
            await loop.run_in_executor(None, sink.write, pending)
    finally:
        if outstanding is not None:
            with contextlib.suppress(BaseException):
                await outstanding


@router.post("/{job_id}")
async def upload_chunk(job_id: str, request: Request, caller: LibraryCaller) -> JSONResponse:
    """Add data to an upload job (``?chunk=N[&finish=true]``); re-sending a chunk number replaces it."""
    state = get_state(request)
    number, finish, length = _chunk_params(request)
    expected = _expected_digests(request)
    with state.lock:
        job = _lookup(state, caller, job_id)
        _reserve_chunk(state, job, number, length, finish)
        chunk_path = os.path.join(job.job_dir, f"chunk-{number}-{new_id()}.part")
    try:
        sink = await _receive_chunk(request, job, chunk_path, expected, length)
        chunk = Chunk(number=number, path=chunk_path, size=sink.size, first_bytes=sink.first)
        _store_chunk(state, job, chunk, sink)
    except ClientDisconnect:
        # the client went away mid-body: nothing was stored and nobody will read an answer
        return JSONResponse({}, status_code=400)
    finally:
        with state.lock:
            job.in_flight -= 1
    if finish:
        return await finish_job(job_id, request, caller)
    with state.lock:
        return JSONResponse(upload_response(request, job))


def _chunk_params(request: Request) -> tuple[int, bool, int]:
    """(chunk number, finish flag, Content-Length) of a chunk request (400 when missing or invalid)."""
    raw_chunk = request.query_params.get("chunk")
    if raw_chunk is None:
        raise ApiError("invalid_request", "The query parameter chunk is required")
    try:
        number = int(raw_chunk)
    except ValueError as exc:
        raise ApiError("invalid_request", f"Invalid chunk number {raw_chunk!r}") from exc
    if number < 0 or number > _INT32_MAX:
        raise ApiError("invalid_request", f"Invalid chunk number {number}: must be a non-negative int32")
    finish = parse_bool(request.query_params.get("finish"), "finish")
    raw_length = request.headers.get("content-length")
    if raw_length is None:
        raise ApiError("invalid_request", "The Content-Length header is required")
    try:
        length = int(raw_length)
        if length < 0:
            raise ValueError
    except ValueError as exc:
        raise ApiError("invalid_request", f"Invalid Content-Length {raw_length!r}") from exc
    return number, finish, length


def _reserve_chunk(state: EmulatorState, job: UploadJob, number: int, length: int, finish: bool) -> None:
    """Check a chunk may come in now (under the lock) and count it in flight."""
    cfg = state.config
    if job.status != UPLOAD_OPEN or job.finishing:
        raise ApiError("job_unknown", f"The upload job {job.job_id} is not open (status {job.status})")
    if job.in_flight >= cfg.max_parallel_chunks_per_job:
        raise ApiError(
            "server_busy",
            f"Too many parallel chunk uploads for job {job.job_id} (maximum {cfg.max_parallel_chunks_per_job})",
            headers={"Retry-After": str(cfg.retry_after)},
        )
    others = sum(c.size for n, c in job.chunks.items() if n != number)
    if others + length > cfg.max_upload_bytes:
        raise ApiError(
            "limit_exceeded",
            f"The upload would exceed the maximum upload size of {cfg.max_upload_bytes} bytes",
        )
    if length < cfg.min_chunk_bytes and not finish and any(n > number for n in job.chunks):
        raise ApiError(
            "invalid_request",
            f"Chunk {number} ({length} bytes) is smaller than the minimum chunk size of "
            f"{cfg.min_chunk_bytes} bytes and is not the last chunk",
        )
    job.in_flight += 1


async def _receive_chunk(
    request: Request, job: UploadJob, path: str, expected: dict[str, bytes], length: int
) -> _ChunkSink:
    """Stream the body to ``path`` and verify its length and digests (the file is removed on failure)."""
    try:
        sink = _ChunkSink(path, set(expected))
    except OSError as exc:
        raise ApiError("job_unknown", f"The upload job {job.job_id} no longer exists") from exc
    try:
        await _stream_to(request, sink)
        sink.close()
    except BaseException:
        sink.discard()
        raise
    if sink.size != length:
        sink.discard()
        raise ApiError("invalid_request", f"Received {sink.size} bytes but Content-Length was {length}")
    got = sink.digests()
    for alg, want in expected.items():
        if got[alg] != want:
            sink.discard()
            name = {"md5": "MD5", "sha1": "SHA", "sha256": "SHA-256", "sha512": "SHA-512"}[alg]
            raise ApiError("bad_digest", f"The {name} digest does not match the digest of the request body")
    return sink


def _store_chunk(state: EmulatorState, job: UploadJob, chunk: Chunk, sink: _ChunkSink) -> None:
    """Make a received chunk part of the job (replacing one with the same number), if still allowed."""
    number = chunk.number
    with state.lock:
        if state.library.upload_jobs.get(job.job_id) is not job or job.status != UPLOAD_OPEN:
            sink.discard()
            raise ApiError("job_unknown", f"The upload job {job.job_id} is no longer open")
        others = sum(c.size for n, c in job.chunks.items() if n != number)
        if others + chunk.size > state.config.max_upload_bytes:
            sink.discard()
            raise ApiError("limit_exceeded", "The upload exceeds the maximum upload size")
        old = job.chunks.get(number)
        job.chunks[number] = chunk
    if old is not None:
        _remove(old.path)


# --- status / cancel
@router.get("/{job_id}")
async def job_status(job_id: str, request: Request, caller: LibraryCaller) -> JSONResponse:
    """Status of an upload job (uploaded chunks, finishedAt / cancelledAt)."""
    state = get_state(request)
    with state.lock:
        job = _lookup(state, caller, job_id)
        job.polls.record(state.now())
        return JSONResponse(upload_response(request, job))


@router.delete("/{job_id}")
async def cancel_job(job_id: str, request: Request, caller: LibraryCaller) -> JSONResponse:
    """Cancel an upload job: sets cancelledAt and discards the chunks (idempotent)."""
    state = get_state(request)
    with state.lock:
        job = _lookup(state, caller, job_id)
        job.cancel_requests += 1
        if job.status == UPLOAD_FINISHED:
            raise ApiError("precondition_failed", f"The upload job {job_id} is already finished")
        if job.finishing:
            raise ApiError(
                "server_busy",
                f"The upload job {job_id} is being finished",
                headers={"Retry-After": str(state.config.retry_after)},
            )
        if job.status == UPLOAD_OPEN:
            job.status = UPLOAD_CANCELLED
            job.cancelled_at = state.now()
            _discard_chunks(job)
        return JSONResponse(upload_response(request, job))


# --- finish
def chunk_gaps(numbers: list[int]) -> list[tuple[int, int]]:
    """Missing ranges (inclusive) in the ascending chunk ``numbers``, which must run from 0 or 1."""
    gaps: list[tuple[int, int]] = []
    expected = 0 if numbers and numbers[0] == 0 else 1
    for number in numbers:
        if number > expected:
            gaps.append((expected, number - 1))
        expected = number + 1
    return gaps


@router.post("/{job_id}/finish")
async def finish_job(job_id: str, request: Request, caller: LibraryCaller) -> JSONResponse:
    """Finish an upload: checks, assembles the chunks and creates/overwrites the library item atomically."""
    state = get_state(request)
    with state.lock:
        job = _lookup(state, caller, job_id)
        if job.status == UPLOAD_FINISHED:
            return JSONResponse(upload_response(request, job))
        if job.status != UPLOAD_OPEN:
            raise ApiError("job_unknown", f"The upload job {job_id} is not open (status {job.status})")
        busy = {"Retry-After": str(state.config.retry_after)}
        if job.finishing:
            raise ApiError("server_busy", f"The upload job {job_id} is already being finished", headers=busy)
        if job.in_flight > 0:
            raise ApiError(
                "server_busy", f"Chunks of upload job {job_id} are still being uploaded", headers=busy
            )
        chunks = _finish_checks(state, caller, job)
        job.finishing = True
    dest = _assemble(state, job, chunks)
    with state.lock:
        old_content = _publish(state, caller, job, dest, sum(c.size for c in chunks))
        response = upload_response(request, job)
    if old_content:
        unlink_all(old_content)
    shutil.rmtree(job.job_dir, ignore_errors=True)
    return JSONResponse(response)


def _finish_checks(state: EmulatorState, caller: Caller, job: UploadJob) -> list[Chunk]:
    """The finish preconditions, in order (a failure fails the job); returns the chunks in number order."""
    cfg = state.config
    chunks = [c for _, c in sorted(job.chunks.items())]
    total = sum(c.size for c in chunks)
    problem = None
    gaps = chunk_gaps([c.number for c in chunks])
    small = [c.number for c in chunks[:-1] if c.size < cfg.min_chunk_bytes]
    if job.number_of_chunks is not None and job.number_of_chunks != len(chunks):
        problem = f"numberOfChunks was {job.number_of_chunks} but {len(chunks)} chunks were received"
    elif job.number_of_bytes is not None and job.number_of_bytes != total:
        problem = f"numberOfBytes was {job.number_of_bytes} but {total} bytes were received"
    elif gaps:
        problem = (
            "Chunk numbers must be consecutive, starting at 0 or 1: missing chunk(s) "
            + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in gaps[:10])
            + (" ..." if len(gaps) > 10 else "")
        )
    elif small:
        problem = f"Chunk(s) {small} are smaller than the minimum chunk size of {cfg.min_chunk_bytes} bytes"
    if problem is not None:
        raise _fail(state, job, "precondition_failed", problem)
    if total > cfg.max_upload_bytes:
        raise _fail(state, job, "limit_exceeded", f"The upload exceeds {cfg.max_upload_bytes} bytes")
    try:
        _target_checks(state, caller, job.parent_path, job.title, job.overwrite)
    except ApiError as err:
        raise _fail(state, job, err.code, err.description) from None
    if b"".join(c.first_bytes for c in chunks)[:2] != SBDF_MAGIC:
        raise _fail(
            state,
            job,
            "unsupported_mediatype",
            "The uploaded content is not a Spotfire Binary Data Format file",
        )
    return chunks


def _assemble(state: EmulatorState, job: UploadJob, chunks: list[Chunk]) -> list[str]:
    """Rename the chunk files into the parts of the item content (no copy, no read)."""
    base = state.library.new_content_path()
    dest = [f"{base}.{i:06d}" for i in range(len(chunks))]
    try:
        for c, d in zip(chunks, dest, strict=True):
            os.replace(c.path, d)
    except Exception:
        unlink_all(dest)
        with state.lock:
            job.finishing = False
            failure = _fail(state, job, "internal_error", "Could not assemble the uploaded chunks")
        raise failure from None
    return dest


def _publish(
    state: EmulatorState, caller: Caller, job: UploadJob, dest: list[str], size: int
) -> list[str] | None:
    """Create or overwrite the item (under the lock, after re-checking the target); returns old content."""
    job.finishing = False
    if state.library.upload_jobs.get(job.job_id) is not job or job.status != UPLOAD_OPEN:
        unlink_all(dest)
        raise ApiError("job_unknown", f"The upload job {job.job_id} is no longer open")
    try:
        existing = _target_checks(state, caller, job.parent_path, job.title, job.overwrite)
    except ApiError as err:
        unlink_all(dest)
        raise _fail(state, job, err.code, err.description) from None
    now = state.now()
    old_content = None
    if existing is not None:
        old_content = existing.content_paths
        existing.content_paths, existing.size, existing.sha256, existing.modified = dest, size, None, now
        if job.description is not None:
            existing.description = job.description
        if job.keywords is not None:
            existing.keywords = list(job.keywords)
        item = existing
    else:
        item = LibraryItem(
            item_id=new_id(),
            parent_path=job.parent_path,
            title=job.title,
            type=job.item_type,
            size=size,
            sha256=None,
            content_paths=dest,
            created=now,
            modified=now,
            description=job.description or "",
            keywords=list(job.keywords or []),
            created_by=caller.client_id,
        )
        state.library.items[item.item_id] = item
    job.status, job.finished_at, job.item_id = UPLOAD_FINISHED, now, item.item_id
    state.count("uploads_finished")
    return old_content


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
