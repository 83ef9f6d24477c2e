"""Fixtures of the Automation Services tests: a hook on the emulator and job-XML builders."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

# Seeded library job items of the emulator (see emulator/seed.py)
JOBS = "/Airflow/Jobs"
EXPORT_FINANCE = f"{JOBS}/Export Finance Report"  # 0.5 s, Finished
BROKEN_EXPORT = f"{JOBS}/Broken Export"  # 0.5 s, Failed with a message
NIGHTLY_BATCH = f"{JOBS}/Nightly Batch"  # queued 1 s, then runs an hour
STATUS_NOT_SET = f"{JOBS}/Status Not Set"  # 0.5 s, NotSet
EXPORT_FINANCE_ID = "491647ba-99f9-43d0-a6ad-776a474ade28"


def _airflow_version() -> Version:
    from airflow import __version__

    return Version(Version(__version__).base_version)


# ResumableJobMixin with a task state store arrived in Airflow 3.3; below, a stand-in starts a new
# job on every try (and the operator aborts the old one whenever it gives up on it).
RESUMABLE = _airflow_version() >= Version("3.3")
requires_resumable = pytest.mark.skipif(not RESUMABLE, reason="needs Airflow 3.3+ (task state store)")

# Quick retries so that fault-injection tests stay fast.
FAST_RETRIES = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, max_total_wait=5)


def job_xml(duration: float = 0.3, queue: float = 0.0, outcome: str = "Finished", message: str = "") -> str:
    """A job definition with its emulator behaviour (timing, outcome, message) in a processing instruction."""
    from airflow_provider_spotfire.emulator.seed import job_xml as seeded_job_xml

    behaviour = f'queue="{queue}" duration="{duration}" outcome="{outcome}"'
    if message:
        behaviour += f' message="{message}"'
    return seeded_job_xml("/Airflow/Reports/Sales", behaviour)


def as_job(emulator: Any, job_id: str) -> dict[str, Any]:
    """The emulator's record of one Automation Services job (status, history, abort reason)."""
    response = emulator.http().get(f"/_emulator/automation/jobs/{job_id}")
    response.raise_for_status()
    return response.json()


def as_jobs(emulator: Any) -> list[dict[str, Any]]:
    """Every Automation Services job the emulator knows."""
    state = emulator.inspect()
    jobs = state.get("as_jobs") or state.get("asJobs") or state.get("automation", {}).get("jobs") or {}
    return list(jobs.values()) if isinstance(jobs, dict) else list(jobs)


def as_starts(emulator: Any) -> int:
    """How many jobs were started (the emulator's counter)."""
    return int(emulator.inspect()["counters"].get("as_starts", 0))


@pytest.fixture
def hook(spotfire_conn_id: str) -> SpotfireHook:
    """A sync hook on the emulator (API client ``airflow``)."""
    h = SpotfireHook(spotfire_conn_id)
    yield h
    h.close()
