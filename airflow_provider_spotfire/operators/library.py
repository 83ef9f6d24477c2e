"""Operator that uploads an SBDF file, or a table streamed as SBDF, to the Spotfire library."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from airflow.providers.common.compat.sdk import BaseOperator, Context

from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.api.library import UploadJob, split_library_path
from airflow_provider_spotfire.assets import create_asset
from airflow_provider_spotfire.exceptions import SpotfireError
from airflow_provider_spotfire.links import SpotfireLibraryItemLink, library_item_url
from airflow_provider_spotfire.operators.base import (
    SpotfireHookMixin,
    default_deferrable,
    poll_schedule_argument,
)
from airflow_provider_spotfire.triggers.events import validate_event
from airflow_provider_spotfire.triggers.schedule import PollSchedule
from airflow_provider_spotfire.upload.chunks import ByteSource, FileSource, StreamSource
from airflow_provider_spotfire.upload.engine import ChunkedUpload
from airflow_provider_spotfire.upload.options import DEFAULT_CHUNK_SIZE, DEFAULT_PARALLELISM, UploadOptions
from airflow_provider_spotfire.upload.progress import ProgressLogger, format_bytes
from airflow_provider_spotfire.upload.sources import ResolvedSource, resolve_source, wrap_source

DEFAULT_POLL_INTERVAL = 5.0
ON_KILL_TIMEOUT = 30.0


class SpotfireUploadSbdfOperator(SpotfireHookMixin, BaseOperator):
    """Uploads an SBDF file, or a table streamed as SBDF, to the Spotfire library.

    :param library_path: full library path of the item: parent folder + title, e.g.
        ``/Airflow/Reports/sales`` (templated). The parent folder must exist.
    :param source: path of an existing ``.sbdf`` file (templated); or a table: a pandas DataFrame
        (also an ``XComArg`` of a TaskFlow task returning one), an iterable of DataFrames, a
        ``pyarrow.Table`` / ``RecordBatchReader``, an iterable of ``RecordBatch`` es or a polars
        DataFrame; or a zero-argument callable returning one of these (e.g. a generator function
        yielding batches). Tables are written as SBDF batch by batch while they are uploaded (no
        temporary file; memory is about one batch plus the chunk buffer); all batches must have
        the same columns and types.
    :param overwrite: replace an existing item (otherwise an existing item is an error).
    :param description: item description (templated).
    :param keywords: item keywords, a list or a comma-separated string (templated).
    :param chunk_size: bytes per chunk (memory use is about ``chunk_size * (parallelism + 2)``).
    :param parallelism: chunks sent at once (Spotfire limits parallel chunks per job).
    :param timezone: zone that time-zone-aware datetimes are converted to (SBDF has no zones).
    :param keep_index: write the DataFrame index as leading column(s).
    :param deferrable: send the chunks on the worker, then wait for the job in the triggerer.
    :param poll_interval: seconds between job status polls (on the worker, or in the triggerer when
        deferred), or a :class:`~airflow_provider_spotfire.triggers.schedule.PollSchedule`. Not given:
        the connection's ``poll_interval`` extra, else 5 s.
    :param spotfire_conn_id: the ``spotfire`` connection.

    Returns (XCom) ``library_path``, ``url``, ``job_id``, ``bytes``, ``chunks``, ``sha256``,
    ``finished_at``, ``source`` and, for tables, ``rows``, ``columns``, ``batches``, ``notes`` and
    ``column_types``.
    Any failure cancels the upload job: no job stays open and no partial item appears.
    """

    template_fields: Sequence[str] = ("library_path", "source", "description", "keywords")
    template_fields_renderers = {"keywords": "json"}
    operator_extra_links = (SpotfireLibraryItemLink(),)
    ui_color = "#e0f2e9"

    def __init__(
        self,
        *,
        library_path: str,
        source: str | os.PathLike[str] | Any | Callable[[], Any],
        overwrite: bool = False,
        description: str | None = None,
        keywords: Sequence[str] | str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallelism: int = DEFAULT_PARALLELISM,
        timezone: str = "UTC",
        keep_index: bool = False,
        deferrable: bool = default_deferrable(),
        poll_interval: float | PollSchedule | None = None,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and isinstance(library_path, str) and "{{" not in library_path:
            # The library item as an Asset, so downstream DAGs can be scheduled on it; an invalid
            # path is left to execute(), which explains it fully.
            with contextlib.suppress(ValueError):
                kwargs["outlets"] = [create_asset(conn_id=spotfire_conn_id, library_path=library_path)]
        super().__init__(**kwargs)
        # Validated now (DAG parse); description and keywords are templated and join at execute().
        # a clear error for a bad value, here; not given: the connection's poll_interval at execute
        self.poll_schedule = poll_schedule_argument(poll_interval, DEFAULT_POLL_INTERVAL)
        self._poll_from_connection = poll_interval is None
        self.upload_options = UploadOptions(
            overwrite=overwrite,
            chunk_size=chunk_size,
            parallelism=parallelism,
            wait_finished=not deferrable,
            poll_interval=self.poll_schedule.interval,
        )
        self.library_path = library_path
        self.source = wrap_source(source)
        self.description = description
        self.keywords = keywords
        self.timezone = timezone
        self.keep_index = keep_index
        self.deferrable = deferrable
        self.spotfire_conn_id = spotfire_conn_id
        self._upload: ChunkedUpload | None = None
        self._result: dict[str, Any] | None = None
        self._done = False
        self._killed = False

    @property
    def chunk_size(self) -> int:
        """Bytes per chunk (from :attr:`upload_options`)."""
        return self.upload_options.chunk_size

    @property
    def parallelism(self) -> int:
        """Chunks in flight at once (from :attr:`upload_options`)."""
        return self.upload_options.parallelism

    @property
    def poll_interval(self) -> float:
        """Seconds between job status polls (from :attr:`upload_options`)."""
        return self.upload_options.poll_interval

    # ---- execute ---------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        """Upload the file, or stream the table as SBDF; defer while the job finishes when deferrable."""
        started = time.time()
        split_library_path(self.library_path)  # the rendered value; fails before anything is written
        if self._poll_from_connection:
            self.poll_schedule = self.connection_poll_schedule(self.poll_schedule)
            self.upload_options = dataclasses.replace(
                self.upload_options, poll_interval=self.poll_schedule.interval
            )
        options = UploadOptions.build(
            self.upload_options, description=self.description, keywords=self.keywords
        )
        source = resolve_source(self.source)
        if source.is_file:
            return self._run_upload(FileSource(source.value), options, context, started, {"source": "file"})
        try:
            return self._upload_table(source, options, context, started)
        finally:
            source.close()

    def _upload_table(
        self, source: ResolvedSource, options: UploadOptions, context: Context, started: float
    ) -> dict[str, Any]:
        """Write the table as SBDF while it is uploaded: batch by batch, no temporary file."""
        from airflow_provider_spotfire.sbdf import SbdfByteStream

        stream = SbdfByteStream(source.value, time_zone=self.timezone, keep_index=self.keep_index)
        extra: dict[str, Any] = {"source": source.kind}

        def describe() -> None:  # filled in as the stream is written; complete once it ends
            extra.update(
                rows=stream.rows,
                columns=len(stream.column_types),
                batches=stream.batches,
                notes=list(stream.notes),
                column_types=dict(stream.column_types),
            )

        try:
            bytes_source = StreamSource(stream, name=f"the {source.kind} source")
            return self._run_upload(bytes_source, options, context, started, extra, before_result=describe)
        finally:
            stream.close()

    def _run_upload(
        self,
        bytes_source: ByteSource,
        options: UploadOptions,
        context: Context,
        started: float,
        extra: dict[str, Any],
        before_result: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        upload = ChunkedUpload(
            self.hook,
            bytes_source,
            self.library_path,
            options,
            progress=ProgressLogger(self.log, self.library_path),
        )
        self._upload = upload
        if self._killed:  # on_kill came before the upload started
            upload.abort()
        result = upload.run()
        if before_result is not None:
            before_result()
            self.log.info(
                "Streamed %d rows x %d columns in %d batch(es) as SBDF to %s: %s in %d chunk(s) (sha256 %s).",
                extra["rows"],
                extra["columns"],
                extra["batches"],
                result.library_path,
                format_bytes(result.bytes),
                result.chunks,
                result.sha256,
            )
        for note in extra.get("notes", ()):
            self.log.info("SBDF conversion: %s", note)
        url = library_item_url(self.hook.config, result.library_path)
        context["ti"].xcom_push(key=SpotfireLibraryItemLink.xcom_key, value=url)
        out = {**result.to_dict(), "url": url, **extra}
        self._result = out
        if not self.deferrable:
            self._done = True
            self.log.info(
                "Uploaded %s to %s (sha256 %s).",
                format_bytes(result.bytes),
                result.library_path,
                result.sha256,
            )
            return out
        assert upload.job is not None
        self._defer_until_finished(upload.job, out, started)

    def _defer_until_finished(self, job: UploadJob, out: dict[str, Any], started: float) -> NoReturn:
        from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger

        self.log.info(
            "All %d chunks sent and the finish requested; deferring until upload job %s reports finishedAt.",
            out["chunks"],
            job.job_id,
        )
        self.defer(
            trigger=SpotfireUploadJobTrigger(
                job_id=job.job_id,
                spotfire_conn_id=self.spotfire_conn_id,
                poll_interval=self.poll_schedule,
                deadline=self.deadline_from(self.execution_timeout, started),
                started_at=started,
                links=job.links,
                library_path=out["library_path"],
                cancel_on_kill=True,
                result=out,
            ),
            method_name="execute_complete",
            kwargs={"result": out, "links": dict(job.links)},
        )
        raise AssertionError("defer() returned")  # pragma: no cover - defer always raises

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        result: dict[str, Any] | None = None,
        links: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Resume after the trigger: success returns the result; anything else cancels the job and raises."""
        details = event.get("details") if isinstance(event, dict) else None
        details = details if isinstance(details, dict) else {}
        result = (
            result
            or details.get("result")
            or {"job_id": event.get("job_id") if isinstance(event, dict) else None}
        )
        links = links or details.get("links") or {}
        try:
            parsed = validate_event(event, job_id=result.get("job_id"))
        except SpotfireError:
            job_id = result.get("job_id") or (event.get("job_id") if isinstance(event, dict) else None)
            if not job_id:
                raise
            job = UploadJob(job_id=str(job_id), links=links)
            self.hook.cancel_upload_job_quietly(job, reason="the wait for the job failed")
            raise
        self._done = True
        result = {**result, "finished_at": parsed.details.get("finished_at") or result.get("finished_at")}
        self._result = result
        self.log.info(
            "Upload job %s finished: %s is in the library.", result["job_id"], result["library_path"]
        )
        return result

    def on_kill(self) -> None:
        """Stop sending and cancel the upload job (no orphan job, no partial item)."""
        self._killed = True
        upload = self._upload
        if upload is None or self._done:
            return
        upload.abort()  # the upload loop stops, cancels the job itself and raises
        job: UploadJob | None = upload.job
        if job is None:
            return
        # Cancel at once too, from a helper thread: on_kill runs in a signal handler that may have
        # interrupted the main thread while it held a lock the cancel request needs.
        helper = threading.Thread(
            target=self.hook.cancel_upload_job_quietly,
            args=(job,),
            kwargs={"reason": "the task was killed"},
            name="spotfire-upload-cancel",
            daemon=True,
        )
        helper.start()
        helper.join(ON_KILL_TIMEOUT)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the library item as output dataset, with its SBDF schema (DataFrame sources)."""
        from airflow_provider_spotfire.openlineage import library_item_lineage

        result = self._result or {}
        return library_item_lineage(
            self.hook.config, result.get("library_path") or self.library_path, result.get("column_types")
        )


__all__ = ["SpotfireUploadSbdfOperator"]
