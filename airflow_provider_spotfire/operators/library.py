"""Operator that uploads an SBDF file or a pandas DataFrame to the Spotfire library."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator, Context, XComArg

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire.api.library import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PARALLELISM,
    SbdfFileUpload,
    UploadJob,
    UploadProgress,
    cancel_upload_job_quietly,
    normalize_keywords,
    split_library_path,
    validate_chunking,
)
from airflow_provider_spotfire.assets import create_asset
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireDataError, SpotfireError
from airflow_provider_spotfire.links import SpotfireLibraryItemLink, library_item_url
from airflow_provider_spotfire.operators.base import SpotfireHookMixin, default_deferrable
from airflow_provider_spotfire.triggers.events import validate_event

DEFAULT_POLL_INTERVAL = 5.0
ON_KILL_TIMEOUT = 30.0
PROGRESS_STEPS = 10  # at most one progress line per 10% of the bytes


def _is_dataframe(value: Any) -> bool:
    pd = sys.modules.get("pandas")  # a DataFrame exists only if pandas is imported
    return pd is not None and isinstance(value, pd.DataFrame)


class _SourceObject:
    """Holds a DataFrame or callable ``source`` so that template rendering leaves it alone.

    (Airflow calls callables found in template fields and probes objects for ``resolve``.)
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        v = self.value
        if _is_dataframe(v):
            return f"<DataFrame: {v.shape[0]} rows x {v.shape[1]} columns>"
        return f"<callable {getattr(v, '__qualname__', type(v).__name__)}>"


def _human(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


class ProgressLogger:
    """Logs upload progress at most every 10% of the bytes (a bounded number of lines)."""

    def __init__(self, log: Any, library_path: str, steps: int = PROGRESS_STEPS) -> None:
        self.log = log
        self.library_path = library_path
        self.steps = steps
        self.next_step = 1

    def __call__(self, p: UploadProgress) -> None:
        reached = int(p.fraction * self.steps + 1e-9)
        if reached < self.next_step:
            return
        self.next_step = reached + 1
        self.log.info(
            "Uploading to %s: %s of %s (%d%%), %d/%d chunks, %s/s",
            self.library_path,
            _human(p.bytes_sent),
            _human(p.total_bytes),
            round(p.fraction * 100),
            p.chunks_sent,
            p.total_chunks,
            _human(p.rate),
        )


class SpotfireUploadSbdfOperator(SpotfireHookMixin, BaseOperator):
    """Uploads an SBDF file, a pandas DataFrame or a callable's DataFrame to the Spotfire library.

    :param library_path: full library path of the item: parent folder + title, e.g.
        ``/Airflow/Reports/sales`` (templated). The parent folder must exist.
    :param source: path of an existing ``.sbdf`` file (templated), a pandas DataFrame (also an
        ``XComArg`` of a TaskFlow task returning one) or a zero-argument callable returning a
        DataFrame. DataFrames are written to a temporary SBDF file (removed afterwards) with
        :func:`airflow_provider_spotfire.sbdf.temporary_sbdf`.
    :param overwrite: replace an existing item (otherwise an existing item is an error).
    :param description: item description (templated).
    :param keywords: item keywords, a list or a comma-separated string (templated).
    :param chunk_size: bytes per chunk (memory use is about ``chunk_size * (parallelism + 1)``).
    :param parallelism: chunks sent at once (Spotfire limits parallel chunks per job).
    :param timezone: zone that time-zone-aware datetimes are converted to (SBDF has no zones).
    :param keep_index: write the DataFrame index as leading column(s).
    :param deferrable: send the chunks on the worker, then wait for the job in the triggerer.
    :param poll_interval: seconds between job status polls when deferred.
    :param spotfire_conn_id: the ``spotfire`` connection.

    Returns (XCom) ``library_path``, ``url``, ``job_id``, ``bytes``, ``chunks``, ``sha256``,
    ``finished_at``, ``source`` and, for DataFrames, ``rows``, ``columns`` and ``notes``.
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
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        spotfire_conn_id: str = "spotfire_default",
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and isinstance(library_path, str) and "{{" not in library_path:
            # The library item as an Asset, so downstream DAGs can be scheduled on it; an invalid
            # path is left to execute(), which explains it fully.
            with contextlib.suppress(ValueError):
                kwargs["outlets"] = [create_asset(conn_id=spotfire_conn_id, library_path=library_path)]
        super().__init__(**kwargs)
        chunk_size, parallelism = validate_chunking(chunk_size, parallelism)
        poll_interval = validate.seconds("poll_interval", poll_interval)
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if source is None or not (
            isinstance(source, str | XComArg) or callable(source) or _is_dataframe(source)
        ):
            raise SpotfireConfigurationError(
                f"source must be the path of an .sbdf file, a pandas DataFrame, an XComArg or a callable "
                f"returning a DataFrame; got {type(source).__name__}."
            )
        self.library_path = library_path
        self.source = source if isinstance(source, str | XComArg) else _SourceObject(source)
        self.overwrite = overwrite
        self.description = description
        self.keywords = keywords
        self.chunk_size = chunk_size
        self.parallelism = parallelism
        self.timezone = timezone
        self.keep_index = keep_index
        self.deferrable = deferrable
        self.poll_interval = float(poll_interval)
        self.spotfire_conn_id = spotfire_conn_id
        self._upload: SbdfFileUpload | None = None
        self._result: dict[str, Any] | None = None
        self._done = False
        self._killed = False

    # ---- source ----------------------------------------------------------------------------
    def _resolve_source(self) -> tuple[str, Any]:
        """("file", path) or ("dataframe"/"callable", DataFrame); one clear error otherwise."""
        src = self.source.value if isinstance(self.source, _SourceObject) else self.source
        if isinstance(src, os.PathLike):
            src = os.fspath(src)
        if isinstance(src, str):
            path = src.strip()
            if not path:
                raise SpotfireConfigurationError(
                    "source is an empty string; give the path of an .sbdf file, a DataFrame or a callable."
                )
            from airflow_provider_spotfire._sbdf_file import assert_sbdf_file

            assert_sbdf_file(path)
            return "file", path
        if _is_dataframe(src):
            return "dataframe", src
        if callable(src):
            name = getattr(src, "__qualname__", None) or repr(src)
            try:
                value = src()
            except Exception as exc:
                raise SpotfireDataError(
                    f"The source callable {name} raised {type(exc).__name__}: {exc}. Fix the callable; "
                    "nothing was uploaded."
                ) from exc
            if not _is_dataframe(value):
                raise SpotfireDataError(
                    f"The source callable {name} returned {type(value).__name__}, not a pandas DataFrame; "
                    "return a DataFrame (or pass the path of an .sbdf file as source)."
                )
            return "callable", value
        raise SpotfireDataError(
            f"source resolved to {type(src).__name__}; expected the path of an .sbdf file or a pandas "
            "DataFrame (check what the upstream task returns)."
        )

    # ---- execute ---------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        """Convert (if needed) and upload; defer while the job finishes when deferrable."""
        started = time.time()
        split_library_path(self.library_path)  # the rendered value; fails before anything is written
        normalize_keywords(self.keywords)
        validate.description(self.description)
        kind, value = self._resolve_source()
        if kind == "file":
            return self._upload_file(value, context, started, {"source": "file"})
        from airflow_provider_spotfire.sbdf import temporary_sbdf

        with temporary_sbdf(value, timezone=self.timezone, keep_index=self.keep_index) as written:
            self.log.info(
                "Wrote the DataFrame (%d rows, %d columns) as SBDF: %s.",
                written.rows,
                written.columns,
                _human(written.bytes),
            )
            for note in written.notes:
                self.log.info("SBDF conversion: %s", note)
            extra = {
                "source": kind,
                "rows": written.rows,
                "columns": written.columns,
                "notes": list(written.notes),
                "column_types": {str(k): str(v) for k, v in written.column_types.items()},
            }
            return self._upload_file(written.path, context, started, extra)

    def _upload_file(
        self, path: str, context: Context, started: float, extra: dict[str, Any]
    ) -> dict[str, Any]:
        upload = SbdfFileUpload(
            self.hook,
            path,
            self.library_path,
            overwrite=self.overwrite,
            description=self.description,
            keywords=self.keywords,
            chunk_size=self.chunk_size,
            parallelism=self.parallelism,
            progress=ProgressLogger(self.log, self.library_path),
            wait_finished=not self.deferrable,
            poll_interval=self.poll_interval,
        )
        self._upload = upload
        if self._killed:  # on_kill came while the DataFrame was being converted
            upload.abort()
        result = upload.run()
        url = library_item_url(self.hook.config, result.library_path)
        context["ti"].xcom_push(key=SpotfireLibraryItemLink.xcom_key, value=url)
        out = {**result.to_dict(), "url": url, **extra}
        self._result = out
        if not self.deferrable:
            self._done = True
            self.log.info(
                "Uploaded %s to %s (sha256 %s).", _human(result.bytes), result.library_path, result.sha256
            )
            return out
        assert upload.job is not None
        from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger

        self.log.info(
            "All %d chunks sent and the finish requested; deferring until upload job %s reports finishedAt.",
            result.chunks,
            result.job_id,
        )
        self.defer(
            trigger=SpotfireUploadJobTrigger(
                job_id=result.job_id,
                spotfire_conn_id=self.spotfire_conn_id,
                poll_interval=self.poll_interval,
                deadline=self.deadline_from(self.execution_timeout, started),
                links=upload.job.links,
                library_path=result.library_path,
                cancel_on_kill=True,
                result=out,
            ),
            method_name="execute_complete",
            kwargs={"result": out, "links": dict(upload.job.links)},
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
            cancel_upload_job_quietly(self.hook, job, reason="the wait for the job failed")
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
            target=cancel_upload_job_quietly,
            args=(self.hook, job),
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
