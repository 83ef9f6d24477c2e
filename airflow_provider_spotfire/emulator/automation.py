"""Automation Services REST API v1 router: ``/spotfire/api/rest/as/job``.

The jobs themselves (lazy status, timing, the job XML's emulator processing instruction) live in
:mod:`.automation_store`; this module is the HTTP layer.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from airflow_provider_spotfire.emulator.automation_store import AsJob, parse_job_xml
from airflow_provider_spotfire.emulator.constants import (
    BUSY,
    DEFAULT_MESSAGES,
    FAILED,
    FINISHED,
    NOT_FOUND_MESSAGE,
    SCOPE_AS_EXECUTE,
    TYPE_AS_JOB,
)
from airflow_provider_spotfire.emulator.core import iso, new_id
from airflow_provider_spotfire.emulator.errors import ApiError, EmptyError
from airflow_provider_spotfire.emulator.oauth import Caller, get_state, require_scope
from airflow_provider_spotfire.emulator.state import EmulatorState

API_PATH = "/spotfire/api/rest/as/job"
_MAX_XML_BYTES = 10 * 1024 * 1024
_CASINGS = {
    "pascal": ("JobId", "StatusCode", "Message", "ServerTime"),
    "camel": ("jobId", "statusCode", "message", "serverTime"),
    "lower": ("jobid", "statuscode", "message", "servertime"),
}

router = APIRouter(prefix=API_PATH, tags=["automation-services-controller"])
AsCaller = Annotated[Caller, Depends(require_scope(SCOPE_AS_EXECUTE))]


def execution_status(state: EmulatorState, job_id: str, code: str, message: str) -> dict[str, Any]:
    """An ExecutionStatus object with the configured key casing (and extra field when enabled)."""
    k_id, k_code, k_msg, k_extra = _CASINGS[state.config.as_field_casing]
    body: dict[str, Any] = {k_id: job_id, k_code: code, k_msg: message}
    if state.config.extra_response_fields:
        body[k_extra] = iso(state.now())
    return body


def _run_seconds(state: EmulatorState, behaviour: dict[str, Any] | None) -> float:
    """The job's own ``duration``, else a draw from ``as_run_seconds_range``, else ``as_run_seconds``."""
    if behaviour and "duration" in behaviour:
        return float(behaviour["duration"])
    cfg = state.config
    if behaviour is not None and cfg.as_run_seconds_range is not None:
        low, high = cfg.as_run_seconds_range
        return state.automation.rng.uniform(low, high)
    return cfg.as_run_seconds


def _start(
    state: EmulatorState,
    caller: Caller,
    source_kind: str,
    source: str,
    source_key: str,
    behaviour: dict[str, Any] | None,
    item_id: str | None = None,
    path_param: str | None = None,
) -> JSONResponse:
    with state.lock:
        cfg = state.config
        now = state.now()
        if behaviour is not None and state.automation.running_count(now) >= cfg.as_max_concurrent_jobs:
            state.count("as_busy")
            return JSONResponse(execution_status(state, new_id(), BUSY, DEFAULT_MESSAGES[BUSY]))
        starts = state.counters.setdefault("as_starts_by_source", {}).get(source_key, 0) + 1
        state.count("as_starts_by_source", source_key)
        state.count("as_starts")
        state.count("as_starts_by_client", caller.client_id)
        job = AsJob(
            job_id=new_id(),
            client_id=caller.client_id,
            source_kind=source_kind,
            source=source,
            created_at=now,
            queue_seconds=float((behaviour or {}).get("queue", cfg.as_queue_seconds)),
            run_seconds=_run_seconds(state, behaviour),
            outcome=(behaviour or {}).get("outcome", FINISHED),
            outcome_message=(behaviour or {}).get("message"),
            starts=starts,
            item_id=item_id,
            path_param=path_param,
            immediate=(FAILED, NOT_FOUND_MESSAGE) if behaviour is None else None,
        )
        state.automation.add(job)
        code, message = job.status(now)
        return JSONResponse(execution_status(state, job.job_id, code, message))


@router.post("/start-library")
async def start_library(request: Request, caller: AsCaller) -> JSONResponse:
    """Start a job stored in the library (``?path=`` or ``?id=``); unknown/no access → 200 Failed."""
    state = get_state(request)
    path = request.query_params.get("path")
    item_id = request.query_params.get("id")
    if not path and not item_id:
        raise ApiError("invalid_request", "Either the path or the id query parameter is required")
    with state.lock:
        if item_id:
            item = state.library.find_item_by_id(item_id)
            kind, source = "library-id", item_id
        else:
            item = state.library.find_item(path or "", TYPE_AS_JOB)
            kind, source = "library-path", path or ""
        ok = (
            item is not None
            and item.type == TYPE_AS_JOB
            and state.library.can_read(caller.user_id, item.parent_path)
            and item.as_behaviour is not None
        )
        behaviour = dict(item.as_behaviour or {}) if ok and item else None
        return _start(
            state,
            caller,
            kind,
            source,
            f"item:{item.item_id}" if ok and item else f"{kind}:{source}",
            behaviour,
            item_id=item.item_id if ok and item else None,
        )


@router.post("/start-content")
async def start_content(request: Request, caller: AsCaller) -> JSONResponse:
    """Start a job from its XML definition (body ``application/xml``; must be well-formed)."""
    state = get_state(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in ("application/xml", "text/xml") and not ctype.endswith("+xml"):
        raise ApiError("unsupported_mediatype", f"Unsupported content type {ctype}; expected application/xml")
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > _MAX_XML_BYTES:
            raise ApiError("invalid_request", "The job definition is too large")
    if not bytes(body).strip():
        raise ApiError("invalid_request", "The job definition (request body) is missing")
    try:
        behaviour = parse_job_xml(bytes(body))
    except ValueError as exc:
        raise ApiError("invalid_request", f"Invalid job definition: {exc}") from exc
    digest = hashlib.sha256(body).hexdigest()
    text = bytes(body).decode("utf-8", errors="replace")
    source = text if len(text) <= 4096 else text[:4096] + "..."
    return _start(
        state,
        caller,
        "xml",
        source,
        f"xml:{digest}",
        behaviour,
        path_param=request.query_params.get("path"),
    )


def _job(state: EmulatorState, job_id: str) -> AsJob:
    job = state.automation.get(job_id)
    if job is None:
        raise EmptyError(404)
    return job


@router.get("/status/{job_id}")
async def job_status(job_id: str, request: Request, caller: AsCaller) -> JSONResponse:
    """Status of a job (404 without body when unknown; Missing when the emulator 'forgot' it)."""
    state = get_state(request)
    with state.lock:
        job = _job(state, job_id)
        job.polls.record(state.now())
        code, message = job.status(state.now())
        return JSONResponse(execution_status(state, job.job_id, code, message))


@router.post("/abort/{job_id}")
async def abort_job(job_id: str, request: Request, caller: AsCaller) -> JSONResponse:
    """Abort a Queued/InProgress job (→ Canceled, reason recorded); other jobs are returned unchanged."""
    state = get_state(request)
    reason = request.query_params.get("reason")
    with state.lock:
        job = _job(state, job_id)
        job.abort_requests += 1
        now = state.now()
        state.automation.abort(job, now, reason)
        code, message = job.status(now)
        return JSONResponse(execution_status(state, job.job_id, code, message))
