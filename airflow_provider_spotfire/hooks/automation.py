"""Automation Services methods of both hooks, each written once as an operation flow.

:class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireApiMethods` makes them hook methods.

The requests and what their answers mean live in :mod:`airflow_provider_spotfire.api.automation`;
this module only decides the order of calls (start again while Busy, 404 as Missing...).
"""

from __future__ import annotations

import logging

from airflow_provider_spotfire.api.automation import (
    AutomationJobSource,
    BusyRetry,
    ExecutionStatus,
    build_abort_job,
    build_get_job_status,
    build_start_library_job,
    build_start_xml_job,
    missing_status,
)
from airflow_provider_spotfire.exceptions import SpotfireNotFoundError
from airflow_provider_spotfire.hooks.flow import Operation, Sleep

log = logging.getLogger(__name__)


def start_automation_job_from_library(
    *, library_path: str | None = None, library_id: str | None = None
) -> Operation[ExecutionStatus]:
    """Start a library job once (by path or GUID); may return ``Busy``; raises on a refused start."""
    status: ExecutionStatus = yield build_start_library_job(library_path=library_path, library_id=library_id)
    return status


def start_automation_job_from_xml(
    job_xml: str | bytes, *, path: str | None = None
) -> Operation[ExecutionStatus]:
    """Start a job from its XML definition once; may return ``Busy``; raises on a refused start."""
    status: ExecutionStatus = yield build_start_xml_job(job_xml, path=path)
    return status


def start_automation_job(
    source: AutomationJobSource, *, busy_retry: BusyRetry | None = None
) -> Operation[ExecutionStatus]:
    """Start a job, starting again with bounded backoff while the server answers ``Busy``."""
    policy = busy_retry or BusyRetry()
    attempts, waited = 1, 0.0
    status: ExecutionStatus = yield source.start_request()
    delays = policy.delays()
    while status.is_busy:
        delay = next(delays, None)
        if delay is None:
            raise policy.exhausted(source, attempts, status, waited)
        log.warning("Automation Services is Busy (%s); starting again in %.1fs.", status.message, delay)
        yield Sleep(delay)
        attempts, waited = attempts + 1, waited + delay
        status = yield source.start_request()
    return status


def get_automation_job_status(job_id: str, *, missing_ok: bool = False) -> Operation[ExecutionStatus]:
    """The job's ExecutionStatus; with ``missing_ok`` a 404 reads as ``Missing`` instead of raising."""
    try:
        status: ExecutionStatus = yield build_get_job_status(job_id)
    except SpotfireNotFoundError as exc:
        if not missing_ok:
            raise
        return missing_status(job_id, exc)
    return status


def abort_automation_job(
    job_id: str, reason: str | None = None, *, missing_ok: bool = True
) -> Operation[ExecutionStatus | None]:
    """Abort the job with ``reason``; a job unknown to the server (404) is ignored if ``missing_ok``."""
    try:
        status: ExecutionStatus | None = yield build_abort_job(job_id, reason)
    except SpotfireNotFoundError:
        if not missing_ok:
            raise
        return None
    return status


__all__ = [
    "abort_automation_job",
    "get_automation_job_status",
    "start_automation_job",
    "start_automation_job_from_library",
    "start_automation_job_from_xml",
]
