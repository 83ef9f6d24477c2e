"""``/_emulator/...`` inspection and control endpoints, and the request-log middleware.

These endpoints are unauthenticated and exist only in the emulator (a development/test tool): never expose
an emulator on an untrusted network.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_spotfire.emulator.constants import AS_JOB_STATES, TYPE_AS_JOB, UPLOAD_STATES
from airflow_provider_spotfire.emulator.core import iso
from airflow_provider_spotfire.emulator.faults import FAULT_KINDS
from airflow_provider_spotfire.emulator.library_store import split_path
from airflow_provider_spotfire.emulator.oauth import INFO_KEY, get_state
from airflow_provider_spotfire.emulator.seed import job_xml
from airflow_provider_spotfire.emulator.state import EmulatorState

ADMIN_PREFIX = "/_emulator"

router = APIRouter(prefix=ADMIN_PREFIX, tags=["emulator"])


# --- request log
class RequestLogMiddleware:
    """Records every non-admin request (never tokens or secrets) in the bounded request log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        state: EmulatorState = scope["app"].state.emulator
        info: dict[str, Any] = scope.setdefault(INFO_KEY, {})
        started = time.monotonic()
        result: dict[str, Any] = {}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                result["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            result.setdefault("status", 500)
            raise
        finally:
            self._log(state, scope, info, result.get("status"), started)

    @staticmethod
    def _log(
        state: EmulatorState, scope: Scope, info: dict[str, Any], status: int | None, started: float
    ) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client_id = info.get("client_id")
        scopes = info.get("scopes")
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and client_id is None:
            with state.lock:
                tok = state.oauth.tokens.get(value.strip())
                if tok is not None:
                    client_id, scopes = tok.client_id, list(tok.scopes)
        try:
            length: int | None = int(headers["content-length"])
        except (KeyError, ValueError):
            length = None
        path = scope["path"]
        if path.startswith("/spotfire/api/"):
            state.count("api_requests")
        state.log_request(
            {
                "time": iso(state.now()),
                "method": scope["method"],
                "path": path,
                "query": scope.get("query_string", b"").decode("latin-1"),
                "status": None if (info.get("fault") or "").startswith("drop") else status,
                "client_id": client_id,
                "scopes": scopes,
                "auth_scheme": scheme.capitalize() if scheme else None,
                "content_length": length,
                "content_type": headers.get("content-type"),
                "digest_headers": [h for h in ("Content-MD5", "Digest") if h.lower() in headers],
                "fault": info.get("fault"),
                "lost_status": info.get("lost_status"),
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
            }
        )


# --- helpers
def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


# --- state / log / config
@router.get("/state")
async def get_emulator_state(request: Request) -> JSONResponse:
    """Library items, upload jobs, AS jobs, license assignments, counters, config."""
    state = get_state(request)
    await anyio.to_thread.run_sync(state.library.hash_items)
    snap = state.snapshot()
    snap["config"] = state.config.to_dict()
    return JSONResponse(snap)


@router.get("/requests")
async def get_requests(request: Request) -> JSONResponse:
    """The request log (``?limit=N``, ``?path_prefix=``, ``?since=<seq>``), oldest first."""
    state = get_state(request)
    q = request.query_params
    with state.lock:
        entries = list(state.activity.request_log)
    if q.get("path_prefix"):
        entries = [e for e in entries if e["path"].startswith(q["path_prefix"])]
    try:
        since = int(q.get("since") or 0)
        limit = int(q.get("limit") or 0)
    except ValueError:
        return _bad("since and limit must be integers")
    if since:
        entries = [e for e in entries if e["seq"] > since]
    if limit > 0:
        entries = entries[-limit:]
    return JSONResponse(entries)


@router.delete("/requests")
async def clear_requests(request: Request) -> JSONResponse:
    """Empty the request log."""
    state = get_state(request)
    with state.lock:
        state.activity.request_log.clear()
    return JSONResponse({"cleared": True})


@router.get("/config")
async def get_config(request: Request) -> JSONResponse:
    """The current configuration."""
    return JSONResponse(get_state(request).config.to_dict())


@router.patch("/config")
async def patch_config(request: Request) -> JSONResponse:
    """Change configuration at run time (validated; unknown keys → 400)."""
    state = get_state(request)
    try:
        patch = await _json(request)
        cfg = state.set_config(patch)
    except ValueError as exc:
        return _bad(f"invalid configuration: {exc}")
    return JSONResponse(cfg.to_dict())


@router.post("/reset")
async def reset(request: Request) -> JSONResponse:
    """Restore the seeded state and (unless ``?keep_config=true``) the start-up configuration."""
    state = get_state(request)
    keep = request.query_params.get("keep_config", "").lower() in ("1", "true", "yes")
    state.reset(restore_config=not keep)
    return JSONResponse({"reset": True, "config": state.config.to_dict()})


@router.post("/clock/advance")
async def advance_clock(request: Request) -> JSONResponse:
    """Move the emulator clock forward: ``{"seconds": N}`` (token expiry, AS job progress, ...)."""
    state = get_state(request)
    try:
        seconds = float((await _json(request)).get("seconds", 0))
        if seconds < 0:
            raise ValueError("seconds must not be negative")
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    offset = state.advance_clock(seconds)
    return JSONResponse({"clock_offset": offset, "now": iso(state.now())})


@router.post("/clock/freeze")
async def freeze_clock(request: Request) -> JSONResponse:
    """Stop the emulator clock (``{"frozen": false}`` restarts it); makes time-based tests deterministic."""
    state = get_state(request)
    try:
        frozen = bool((await _json(request)).get("frozen", True))
    except ValueError as exc:
        return _bad(str(exc))
    state.freeze_clock(frozen)
    return JSONResponse({"frozen": frozen, "now": iso(state.now())})


# --- faults
@router.get("/faults")
async def get_fault_script(request: Request) -> JSONResponse:
    """Pending scripted faults."""
    state = get_state(request)
    with state.lock:
        return JSONResponse(list(state.fault_script))


@router.post("/faults")
async def add_fault_script(request: Request) -> JSONResponse:
    """Queue deterministic faults.

    Body: ``{"faults": ["503", "drop_after", ...], "path_prefix": "/spotfire/api/", "method": "POST"}``.
    """
    state = get_state(request)
    try:
        body = await _json(request)
    except ValueError as exc:
        return _bad(str(exc))
    faults = body.get("faults")
    if isinstance(faults, str):
        faults = [faults]
    if not isinstance(faults, list) or not all(f in FAULT_KINDS for f in faults):
        return _bad(f"faults must be a list of {', '.join(FAULT_KINDS)}")
    prefix = body.get("path_prefix") or "/spotfire/"
    method = body.get("method")
    with state.lock:
        for f in faults:
            state.fault_script.append({"fault": f, "path_prefix": prefix, "method": method})
        return JSONResponse(list(state.fault_script))


@router.delete("/faults")
async def clear_fault_script(request: Request) -> JSONResponse:
    """Forget all scripted faults."""
    state = get_state(request)
    with state.lock:
        state.fault_script.clear()
    return JSONResponse([])


# --- library
def _principals(state: EmulatorState, refs: Any) -> list[str] | None:
    if refs is None:
        return None
    if not isinstance(refs, list):
        raise ValueError("read/write must be lists of principals")
    out = []
    for ref in refs:
        pid = state.principals.resolve_principal(str(ref))
        if pid is None:
            raise ValueError(
                f"unknown principal {ref!r} (use a user/group id, group name, user name or client id)"
            )
        out.append(pid)
    return out


@router.post("/library/folders")
async def create_folder(request: Request) -> JSONResponse:
    """Create a folder: ``{"path": "/A/B", "read": [...], "write": [...], "parents": true}``."""
    state = get_state(request)
    try:
        body = await _json(request)
        folder = state.library.add_folder(
            str(body.get("path", "")),
            read=_principals(state, body.get("read")),
            write=_principals(state, body.get("write")),
            parents=bool(body.get("parents", True)),
        )
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse(
        {
            "id": folder.folder_id,
            "path": folder.path,
            "read": sorted(folder.read),
            "write": sorted(folder.write),
        },
        status_code=201,
    )


@router.delete("/library/folders")
async def delete_folder(request: Request) -> JSONResponse:
    """Delete a folder and everything below it: ``?path=/A/B``."""
    state = get_state(request)
    try:
        removed = state.library.remove_folder(request.query_params.get("path", ""))
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse({"deleted": True, "items_removed": removed})


@router.post("/library/items")
async def create_item(request: Request) -> JSONResponse:
    """Create/replace an item, typically an AS job.

    Body: ``{"path": "/Airflow/Jobs/My job", "type": "spotfire.automationservicesjob",
    "emulator": {"queue": 0, "duration": 2, "outcome": "Failed", "message": "..."}}`` or explicit
    ``"content"`` (text) / ``"content_base64"``.
    """
    state = get_state(request)
    try:
        body = await _json(request)
        split = split_path(str(body.get("path", "")))
        if split is None:
            raise ValueError("path must be an absolute library path of an item")
        parent, title = split
        item_type = body.get("type") or TYPE_AS_JOB
        if "content_base64" in body:
            content = base64.b64decode(body["content_base64"])
        elif "content" in body:
            content = str(body["content"]).encode()
        elif item_type == TYPE_AS_JOB:
            emu = body.get("emulator") or {}
            pi = " ".join(f'{k}="{v}"' for k, v in emu.items())
            content = job_xml(f"{parent}/{title}", pi).encode()
        else:
            raise ValueError("content or content_base64 is required")
        item = state.library.add_item(
            parent,
            title,
            item_type,
            content,
            description=str(body.get("description", "")),
            keywords=list(body.get("keywords") or []),
            created_by="_emulator",
        )
    except KeyError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse(item.to_dict(), status_code=201)


@router.delete("/library/items/{item_id}")
async def delete_item(item_id: str, request: Request) -> JSONResponse:
    """Delete one library item."""
    if not get_state(request).library.remove_item(item_id):
        return _bad(f"unknown item {item_id}", 404)
    return JSONResponse({"deleted": True})


@router.get("/library/items/{item_id}/content")
async def item_content(item_id: str, request: Request) -> Response:
    """Download the bytes of a library item (to prove byte-exact uploads)."""
    state = get_state(request)
    with state.lock:
        item = state.library.find_item_by_id(item_id)
        if item is None:
            return _bad(f"unknown item {item_id}", 404)
        # open now: a concurrent overwrite/delete unlinks the files but open handles stay readable
        content = state.library.open_content(item)
        size = item.size
    try:
        sha = await anyio.to_thread.run_sync(state.library.content_sha256, content)
    except BaseException:
        content.close()
        raise

    def chunks() -> Iterator[bytes]:
        for fh in content.handles:
            with fh:
                while block := fh.read(1024 * 1024):
                    yield block

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size), "X-Content-SHA256": sha},
    )


# --- clients / tokens
@router.get("/clients")
async def list_clients(request: Request) -> JSONResponse:
    """All API clients, with their secrets (dev-only!)."""
    state = get_state(request)
    with state.lock:
        return JSONResponse([c.to_dict(include_secret=True) for c in state.principals.clients.values()])


@router.post("/clients")
async def register_client(request: Request) -> JSONResponse:
    """Register an API client (like ``register-api-client``); ``groups`` take ids or names."""
    state = get_state(request)
    try:
        body = await _json(request)
        groups = [state.principals.resolve_principal(str(g)) or str(g) for g in body.get("groups") or []]
        client = state.principals.register_client(
            client_id=body.get("client_id", ""),
            client_secret=body.get("client_secret"),
            profile=body.get("profile", "other"),
            scopes=body.get("scopes"),
            grant_types=body.get("grant_types"),
            token_endpoint_auth_methods=body.get("token_endpoint_auth_methods"),
            redirect_uris=body.get("redirect_uris"),
            groups=groups,
            display_name=body.get("display_name"),
        )
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    return JSONResponse(client.to_dict(include_secret=True), status_code=201)


@router.delete("/clients/{client_id}")
async def delete_client(client_id: str, request: Request) -> JSONResponse:
    """Remove an API client (its tokens stop working)."""
    state = get_state(request)
    with state.lock:
        if state.principals.remove_client(client_id) is None:
            return _bad(f"unknown client {client_id}", 404)
        state.oauth.revoke_client_tokens(client_id)
    return JSONResponse({"deleted": True})


@router.get("/oauth/stats")
async def oauth_stats(request: Request) -> JSONResponse:
    """Refresh-token counters: refresh requests, detected reuses, revoked grants, live tokens."""
    state = get_state(request)
    with state.lock:
        now = state.now()
        counters = state.counters
        cfg = state.config
        return JSONResponse(
            {
                "refresh_requests": counters["refresh_requests"],
                "reuse_detected": counters["reuse_detected"],
                "grants_revoked": counters["grants_revoked"],
                "rotate_refresh_tokens": cfg.rotate_refresh_tokens,
                "refresh_token_reuse_detection": cfg.refresh_token_reuse_detection,
                "active_access_tokens": state.oauth.active("access", now),
                "active_refresh_tokens": state.oauth.active("refresh", now),
            }
        )


@router.post("/tokens/revoke")
async def revoke_tokens(request: Request) -> JSONResponse:
    """Revoke all tokens, or those of ``{"client_id": ...}`` (simulates a server-side invalidation)."""
    state = get_state(request)
    try:
        body = await _json(request)
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse({"revoked": state.oauth.revoke_client_tokens(body.get("client_id"))})


# --- automation
def _state_filter(request: Request, allowed: tuple[str, ...]) -> str | None:
    """The ``?state=`` filter matched case-insensitively to one of ``allowed`` (ValueError if unknown)."""
    raw = request.query_params.get("state")
    if not raw:
        return None
    for name in allowed:
        if name.lower() == raw.lower():
            return name
    raise ValueError(f"unknown state {raw!r}; use one of {', '.join(allowed)}")


def _job_list(
    request: Request, allowed: tuple[str, ...], rows: Callable[[EmulatorState], list[dict[str, Any]]]
) -> JSONResponse:
    """The rows of a job list, filtered by ``?state=`` (400 for an unknown state)."""
    state = get_state(request)
    try:
        wanted = _state_filter(request, allowed)
    except ValueError as exc:
        return _bad(str(exc))
    with state.lock:
        found = rows(state)
    return JSONResponse([r for r in found if wanted is None or r["state"] == wanted])


@router.get("/automation/jobs")
async def list_as_jobs(request: Request) -> JSONResponse:
    """All AS jobs (id, state, status_polls, abort_requests, times), oldest first; ``?state=`` filters."""
    return _job_list(
        request, AS_JOB_STATES, lambda state: [j.summary(state.now()) for j in state.automation.jobs.values()]
    )


@router.get("/library/jobs")
async def list_upload_jobs(request: Request) -> JSONResponse:
    """All upload jobs (id, state, status_polls, cancel_requests, times), oldest first; ``?state=``."""
    return _job_list(
        request, UPLOAD_STATES, lambda state: [j.summary() for j in state.library.upload_jobs.values()]
    )


def _one_job(
    request: Request, job_id: str, jobs: Callable[[EmulatorState], dict[str, Any]], view: Callable[..., Any]
) -> JSONResponse:
    """``view(state, job)`` of one job of ``jobs(state)`` (404 when unknown)."""
    state = get_state(request)
    with state.lock:
        job = jobs(state).get(job_id)
        if job is None:
            return _bad(f"unknown job {job_id}", 404)
        return JSONResponse(view(state, job))


@router.get("/library/jobs/{job_id}")
async def upload_job(job_id: str, request: Request) -> JSONResponse:
    """One upload job (chunks, bytes, status_polls, cancel_requests)."""
    return _one_job(request, job_id, lambda s: s.library.upload_jobs, lambda s, job: job.to_dict())


@router.get("/automation/jobs/{job_id}")
async def as_job(job_id: str, request: Request) -> JSONResponse:
    """One Automation Services job with its history."""
    return _one_job(request, job_id, lambda s: s.automation.jobs, lambda s, job: job.to_dict(s.now()))


@router.post("/automation/jobs/{job_id}/forget")
async def forget_as_job(job_id: str, request: Request) -> JSONResponse:
    """Make a job 'forgotten': its status answers StatusCode Missing from now on."""

    def forget(state: EmulatorState, job: Any) -> dict[str, Any]:
        state.automation.forget(job, state.now())
        return job.to_dict(state.now())

    return _one_job(request, job_id, lambda s: s.automation.jobs, forget)
