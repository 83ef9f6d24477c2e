"""Library REST API v1 (SBDF upload): models, request builders, response parsers, error advice.

Every endpoint of ``/spotfire/api/rest/library/v1/upload`` is described once, as an
:class:`~airflow_provider_spotfire.api.base.ApiRequest` builder (``build_<verb>_<object>``);
the hooks (:mod:`airflow_provider_spotfire.hooks.library`) only send them and the upload engine
(:mod:`airflow_provider_spotfire.upload.engine`) drives a whole upload with them. No I/O here.

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
* **Declared sizes are optional.** ``numberOfBytes``/``numberOfChunks`` are sent when known
  (files) and omitted when not (streams), as the spec allows ("if known").
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Mapping
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
    SpotfireConflictError,
    SpotfireError,
    SpotfireLimitExceededError,
    SpotfireNotFoundError,
    SpotfirePermissionError,
    SpotfireTransportError,
    SpotfireUnsupportedMediaTypeError,
)

log = logging.getLogger(__name__)

UPLOAD_API = "rest/library/v1/upload"
SBDF_ITEM_TYPE = "spotfire.sbdf"
UPLOAD_SCOPES: tuple[str, ...] = (S.LIBRARY_UPLOAD,)
FIRST_CHUNK = 1
MAX_CHUNKS = 2**31 - 1  # chunk numbers are int32

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


def check_description(description: Any) -> str | None:
    """``None`` or a string; one clear error otherwise."""
    return validate.description(description)


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


def job_id_of(job: UploadJobRef) -> str:
    """The id of ``job`` (an :class:`UploadJob` or a bare id)."""
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
        parse=_parser(job_id_of(job)),
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


def _job_request(
    method: str, job: UploadJobRef, kind: LinkKind, config: SpotfireConnectionConfig, **kwargs: Any
) -> ApiRequest[UploadJob]:
    """``method`` on the job's ``kind`` link, answered with the job (``kwargs``: body, headers, idempotent)."""
    return ApiRequest(
        method, _job_link(job, kind, config), UPLOAD_SCOPES, parse=_parser(job_id_of(job)), **kwargs
    )


def build_get_upload_status(job: UploadJobRef, config: SpotfireConnectionConfig) -> ApiRequest[UploadJob]:
    """GET the job's status link."""
    return _job_request("GET", job, "status", config, idempotent=True)


def build_cancel_upload_job(job: UploadJobRef, config: SpotfireConnectionConfig) -> ApiRequest[UploadJob]:
    """DELETE the job's cancel link (cancelling a cancelled job changes nothing, so it is retried)."""
    return _job_request("DELETE", job, "cancel", config, idempotent=True)


def build_finish_upload_job(job: UploadJobRef, config: SpotfireConnectionConfig) -> ApiRequest[UploadJob]:
    """POST the job's finish link (confirmed through the status when the answer is lost)."""
    return _job_request(
        "POST", job, "finish", config, json={}, headers={"Content-Type": "application/json"}, idempotent=False
    )


@dataclass(frozen=True)
class _CreateAdvice:
    """One rule of :func:`explain_create_error`: for a ``kind`` of refusal (when ``applies``), ``advice``.

    ``advice`` is a :meth:`str.format` template over ``path``, ``parent``, ``client_id``, ``size``
    and ``item_type``.
    """

    kind: type[SpotfireApiError]
    advice: str
    applies: Callable[[SpotfireApiError], bool] = lambda exc: True


# the first rule that matches explains the refusal; an error no rule matches is raised as it is
_CREATE_ADVICE = (
    _CreateAdvice(
        SpotfireNotFoundError,
        "Library folder {parent!r} does not exist, or API client {client_id!r} cannot see it. Create the "
        "folder in the Spotfire library (or fix library_path {path!r}) and give the client read and write "
        "access to it.",
    ),
    _CreateAdvice(
        SpotfireConflictError,
        "Library item {path!r} already exists. Pass overwrite=True to replace it, or choose another "
        "library_path.",
    ),
    _CreateAdvice(
        SpotfirePermissionError,
        "API client {client_id!r} may not write to library folder {parent!r}. Grant the client (or a group "
        "it belongs to) write access to that folder, or upload to a folder it can write to.",
        applies=lambda exc: exc.code not in ("invalid_scope", "insufficient_scope"),
    ),
    _CreateAdvice(
        SpotfireLimitExceededError,
        "Uploading {size} to {path!r} exceeds the server's maximum upload size. Upload less data, or ask "
        "the Spotfire administrator to raise the limit (config-web-service-api).",
        applies=lambda exc: exc.status_code == 413,
    ),
    _CreateAdvice(
        SpotfireLimitExceededError,
        "Spotfire refused to start another upload job for {path!r}: too many upload jobs are open for API "
        "client {client_id!r} or the server, even after retrying. Run fewer uploads at once (e.g. an "
        "Airflow pool), or ask the administrator to raise the job limits.",
    ),
    _CreateAdvice(
        SpotfireUnsupportedMediaTypeError,
        "Spotfire does not accept this content for {path!r}; only SBDF files ({item_type}) can be uploaded.",
    ),
    _CreateAdvice(
        SpotfireBadRequestError,
        "Spotfire rejected the upload job for {path!r} as invalid. Check library_path, description and "
        "keywords.",
    ),
)


def explain_create_error(exc: SpotfireApiError, upload: LibraryUpload, client_id: str) -> SpotfireApiError:
    """The same error class with a message naming the cause and the fix for a refused create."""
    rule = next((r for r in _CREATE_ADVICE if isinstance(exc, r.kind) and r.applies(exc)), None)
    if rule is None:
        return exc
    size = f"{upload.number_of_bytes} bytes" if upload.number_of_bytes is not None else "the data"
    advice = rule.advice.format(
        path=upload.library_path,
        parent=upload.parent_path,
        client_id=client_id,
        size=size,
        item_type=SBDF_ITEM_TYPE,
    )
    said = f"{exc.status_code} {exc.code or ''}".rstrip()
    if exc.description:
        said += f", {exc.description.rstrip('.')}"
    return exc.with_message(f"{advice} (Spotfire: {said}).")


def explain_lost_create(exc: SpotfireTransportError, upload: LibraryUpload) -> SpotfireTransportError:
    """The error for a create whose answer was lost after the request was sent (not retried)."""
    return SpotfireTransportError(
        f"The connection broke while creating the upload job for {upload.library_path!r}, after the request "
        "was sent: the server may have opened a job whose id never reached us, so it is not retried (a retry "
        "could open a second job). No library item was written; such a job holds no item but counts "
        f"against the server's open-job limit until the server discards it. Retry the task. Cause: {exc}",
        request_sent=True,
    )


__all__ = [
    "FIRST_CHUNK",
    "MAX_CHUNKS",
    "SBDF_ITEM_TYPE",
    "UPLOAD_SCOPES",
    "LibraryUpload",
    "UploadJob",
    "UploadJobRef",
    "build_cancel_upload_job",
    "build_create_upload_job",
    "build_finish_upload_job",
    "build_get_upload_status",
    "build_upload_chunk",
    "check_description",
    "chunk_digests",
    "explain_create_error",
    "explain_lost_create",
    "job_id_of",
    "normalize_keywords",
    "split_library_path",
]
