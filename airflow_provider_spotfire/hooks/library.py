"""Library REST API v1 methods of the hooks: send the requests of :mod:`..api.library`, run uploads."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_spotfire.api.library import (
    LibraryUpload,
    UploadJob,
    UploadJobRef,
    build_cancel_upload_job,
    build_create_upload_job,
    build_finish_upload_job,
    build_get_upload_status,
    build_upload_chunk,
    check_description,
    explain_create_error,
    explain_lost_create,
    job_id_of,
    normalize_keywords,
    split_library_path,
)
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireBadRequestError,
    SpotfireNotFoundError,
    SpotfireTLSError,
    SpotfireTransportError,
)
from airflow_provider_spotfire.hooks.base import SpotfireAsyncHookBase, SpotfireHookBase
from airflow_provider_spotfire.upload.chunks import Piece
from airflow_provider_spotfire.upload.engine import (
    ChunkedUpload,
    JobCallback,
    ProgressCallback,
    UploadResult,
)
from airflow_provider_spotfire.upload.options import UploadOptions

log = logging.getLogger(__name__)


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
                description=check_description(description),
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
            if isinstance(exc, SpotfireTLSError) or not exc.request_sent:
                raise
            raise explain_lost_create(exc, upload) from None

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

    def cancel_upload_job_quietly(self, job: UploadJobRef, *, reason: str = "") -> bool:
        """Cancel ``job``; log instead of raising (used while another error propagates). True if cancelled."""
        job_id = job_id_of(job)
        try:
            self.cancel_upload_job(job)
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
                "Could not cancel upload job %s (%s); it stays open until the server expires it. It holds "
                "no library item.",
                job_id,
                exc,
            )
            return False
        log.warning("Cancelled upload job %s%s.", job_id, f" after: {reason}" if reason else "")
        return True

    def upload_sbdf_file(
        self,
        path: str | os.PathLike[str],
        library_path: str,
        *,
        options: UploadOptions | None = None,
        progress: ProgressCallback | None = None,
        on_job_created: JobCallback | None = None,
        **option_fields: Any,
    ) -> UploadResult:
        """Upload the SBDF file ``path`` to ``library_path``.

        ``options`` (an :class:`UploadOptions`) or its fields as keywords (``overwrite=True``,
        ``chunk_size=...``; keywords override ``options``).
        """
        opts = UploadOptions.build(options, **option_fields)
        upload = ChunkedUpload.for_file(
            self, path, library_path, opts, progress=progress, on_job_created=on_job_created
        )
        return upload.run()

    def upload_sbdf_stream(
        self,
        pieces: Iterable[Piece],
        library_path: str,
        *,
        size: int | None = None,
        options: UploadOptions | None = None,
        progress: ProgressCallback | None = None,
        on_job_created: JobCallback | None = None,
        **option_fields: Any,
    ) -> UploadResult:
        """Upload the SBDF bytes that ``pieces`` yields (any piece sizes; ``size`` if known).

        Chunks are sent as they fill; no temp file; about ``parallelism + 3`` chunks in memory at the peak.
        A source that raises cancels the job (no orphan job, no partial item).
        """
        opts = UploadOptions.build(options, **option_fields)
        upload = ChunkedUpload.for_stream(
            self, pieces, library_path, opts, size=size, progress=progress, on_job_created=on_job_created
        )
        return upload.run()


class LibraryAsyncHookMixin(SpotfireAsyncHookBase):
    """Library REST API v1 methods of the async ``SpotfireAsyncHook`` (status and cancel, for triggers)."""

    async def get_upload_status(self, job: UploadJobRef) -> UploadJob:
        """Async twin of :meth:`LibraryHookMixin.get_upload_status`."""
        return await self.call(build_get_upload_status(job, await self.aconfig()))

    async def cancel_upload_job(self, job: UploadJobRef) -> UploadJob:
        """Async twin of :meth:`LibraryHookMixin.cancel_upload_job`."""
        return await self.call(build_cancel_upload_job(job, await self.aconfig()))


__all__ = ["LibraryAsyncHookMixin", "LibraryHookMixin"]
