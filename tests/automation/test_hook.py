"""Automation Services REST calls of SpotfireHook against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_spotfire.api.automation import (
    AutomationJobSource,
    BusyRetry,
    ExecutionStatus,
    JobOutcome,
    JobWatch,
    SpotfireAutomationBusyError,
    outcome_of,
    parse_execution_status,
)
from airflow_provider_spotfire.exceptions import (
    SpotfireBadRequestError,
    SpotfireConfigurationError,
    SpotfireError,
    SpotfireJobError,
    SpotfireNotFoundError,
)
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook
from tests.automation.conftest import (
    EXPORT_FINANCE,
    EXPORT_FINANCE_ID,
    NIGHTLY_BATCH,
    as_job,
    as_starts,
    job_xml,
)


def wait_until_done(hook, job_id: str) -> ExecutionStatus:
    for _ in range(100):
        status = hook.get_automation_job_status(job_id)
        if not status.is_active:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {status.status_code}")


def test_start_by_library_path_runs_the_library_job(hook, spotfire_emulator):
    started = hook.start_automation_job(AutomationJobSource(library_path=EXPORT_FINANCE))
    assert started.job_id and started.status_code in ("Queued", "InProgress")
    record = as_job(spotfire_emulator, started.job_id)
    assert record["source"]["kind"] == "library-path"
    assert record["source"]["value"] == EXPORT_FINANCE
    assert record["clientId"] == "airflow"
    assert wait_until_done(hook, started.job_id).status_code == "Finished"


def test_start_by_library_id(hook, spotfire_emulator):
    started = hook.start_automation_job_from_library(library_id=EXPORT_FINANCE_ID)
    record = as_job(spotfire_emulator, started.job_id)
    assert record["source"]["kind"] == "library-id"
    assert record["itemId"] == EXPORT_FINANCE_ID


def test_start_from_xml_sends_the_definition(hook, spotfire_emulator):
    xml = job_xml(duration=0.2, outcome="Failed", message="Disk full")
    started = hook.start_automation_job_from_xml(xml, path="/Airflow/Jobs/adhoc")
    record = as_job(spotfire_emulator, started.job_id)
    assert record["source"]["kind"] == "xml"
    assert "OpenAnalysisFromLibrary" in record["source"]["value"]
    assert record["source"]["path"] == "/Airflow/Jobs/adhoc"
    final = wait_until_done(hook, started.job_id)
    assert (final.status_code, final.message) == ("Failed", "Disk full")
    assert final.outcome is JobOutcome.FAILURE


def test_start_of_unknown_job_file_is_a_failure_with_the_server_message(hook, spotfire_emulator):
    # Spotfire answers HTTP 200 with StatusCode Failed: that must not look like a started job.
    with pytest.raises(SpotfireJobError, match="Job file not found or no access") as err:
        hook.start_automation_job(AutomationJobSource(library_path="/Airflow/Jobs/No such job"))
    assert err.value.status == "Failed"


def test_start_of_a_job_the_client_may_not_read_fails(hook, spotfire_emulator):
    with pytest.raises(SpotfireJobError, match="Job file not found or no access"):
        hook.start_automation_job_from_library(library_path="/Restricted/Finance/Quarter Close")


def test_malformed_xml_is_refused_by_the_server(hook, spotfire_emulator):
    with pytest.raises(SpotfireBadRequestError, match="not well-formed"):
        hook.start_automation_job_from_xml("<as:Job><unclosed></as:Job>")
    assert as_starts(spotfire_emulator) == 0


@pytest.mark.parametrize("casing", ["camel", "lower"])
def test_status_parsing_ignores_casing_and_unknown_fields(hook, spotfire_emulator, casing):
    spotfire_emulator.set_config(as_field_casing=casing, extra_response_fields=True)
    started = hook.start_automation_job_from_library(library_path=EXPORT_FINANCE)
    status = hook.get_automation_job_status(started.job_id)
    assert status.job_id == started.job_id
    assert status.status_code in ("Queued", "InProgress", "Finished")
    assert status.message


def test_status_of_unknown_job_is_404_or_missing(hook, spotfire_emulator):
    with pytest.raises(SpotfireNotFoundError):
        hook.get_automation_job_status("00000000-0000-0000-0000-000000000000")
    missing = hook.get_automation_job_status("00000000-0000-0000-0000-000000000000", missing_ok=True)
    assert missing.status_code == "Missing" and missing.outcome is JobOutcome.FAILURE


def test_forgotten_job_reads_missing(hook, spotfire_emulator):
    started = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH)
    spotfire_emulator.forget_as_job(started.job_id)
    status = hook.get_automation_job_status(started.job_id)
    assert status.status_code == "Missing"


def test_abort_cancels_the_job_and_records_the_reason(hook, spotfire_emulator):
    started = hook.start_automation_job_from_library(library_path=NIGHTLY_BATCH)
    hook.abort_automation_job(started.job_id, "stopped by a test")
    record = as_job(spotfire_emulator, started.job_id)
    assert record["status"] == "Canceled"
    assert record["abortReason"] == "stopped by a test"
    status = hook.get_automation_job_status(started.job_id)
    assert status.status_code == "Canceled" and "stopped by a test" in status.message
    # idempotent: a second abort is harmless, an unknown job is ignored unless asked otherwise
    hook.abort_automation_job(started.job_id, "again")
    assert hook.abort_automation_job("00000000-0000-0000-0000-000000000000") is None
    with pytest.raises(SpotfireNotFoundError):
        hook.abort_automation_job("00000000-0000-0000-0000-000000000000", missing_ok=False)


def test_busy_start_is_repeated_until_the_server_has_room(hook, spotfire_emulator):
    spotfire_emulator.set_config(as_max_concurrent_jobs=1)
    first = hook.start_automation_job_from_xml(job_xml(duration=0.4))
    source = AutomationJobSource(job_xml=job_xml(duration=0.1))
    second = hook.start_automation_job(source, busy_retry=BusyRetry(initial_delay=0.2, max_delay=0.4))
    assert second.job_id != first.job_id and second.status_code in ("Queued", "InProgress")
    counters = spotfire_emulator.inspect()["counters"]
    assert counters.get("as_busy", 0) >= 1
    assert counters["as_starts"] == 2


def test_busy_start_gives_up_after_the_bound_with_a_clear_error(hook, spotfire_emulator):
    spotfire_emulator.set_config(as_max_concurrent_jobs=0)
    retry = BusyRetry(max_attempts=3, initial_delay=0.01, max_delay=0.02)
    with pytest.raises(SpotfireAutomationBusyError, match="answered Busy to 3 starts") as err:
        hook.start_automation_job(AutomationJobSource(library_path=EXPORT_FINANCE), busy_retry=retry)
    assert "retry later" in str(err.value)
    counters = spotfire_emulator.inspect()["counters"]
    assert counters.get("as_busy") == 3 and counters.get("as_starts", 0) == 0


def test_job_source_needs_exactly_one_definition():
    with pytest.raises(SpotfireConfigurationError, match="exactly one of"):
        AutomationJobSource()
    with pytest.raises(SpotfireConfigurationError, match="got library_path, job_xml"):
        AutomationJobSource(library_path="/a", job_xml="<a/>")
    with pytest.raises(SpotfireConfigurationError, match="looks like a file name"):
        AutomationJobSource(job_xml="jobs/missing.xml")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"JobId": "j", "StatusCode": "InProgress", "Message": "m"}, ("j", "InProgress", "m")),
        ({"jobId": "j", "statusCode": "FINISHED"}, ("j", "Finished", "")),
        ({"job_id": "j", "status_code": "in_progress", "message": None, "x": 1}, ("j", "InProgress", "")),
        ({"executionStatus": {"JOBID": "j", "STATUSCODE": "Cancelled"}}, ("j", "Canceled", "")),
        ({"JobId": "j", "StatusCode": "Paused"}, ("j", "Paused", "")),
    ],
)
def test_parse_execution_status_is_forgiving(body, expected):
    status = parse_execution_status(body)
    assert (status.job_id, status.status_code, status.message) == expected


def test_parse_execution_status_rejects_what_is_not_a_status():
    with pytest.raises(SpotfireError, match="without a StatusCode"):
        parse_execution_status({"JobId": "j"})
    with pytest.raises(SpotfireError, match="ExecutionStatus object"):
        parse_execution_status(["Finished"])


def test_every_status_code_has_an_outcome():
    assert outcome_of("Finished") is JobOutcome.SUCCESS
    for code in ("Failed", "Canceled", "Missing"):
        assert outcome_of(code) is JobOutcome.FAILURE
    for code in ("Queued", "InProgress", "Busy"):
        assert outcome_of(code) is JobOutcome.WAIT
    for code in ("NotSet", "Paused", ""):
        assert outcome_of(code) is JobOutcome.UNDETERMINED


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args)


def test_job_watch_logs_state_changes_not_polls():
    log = RecordingLog()
    watch = JobWatch("j1", last_status="Queued", logger=log)
    polls = ["Queued", "Queued", "InProgress", "InProgress", "InProgress", "Finished"]
    changed = [watch.observe(ExecutionStatus("j1", code, f"m {code}")) for code in polls]
    assert changed == [False, False, True, False, False, True]
    assert [line.split(" at ")[0] for line in log.lines] == [
        "Automation Services job j1: Queued -> InProgress",
        "Automation Services job j1: InProgress -> Finished",
    ]
    assert log.lines[-1].endswith("(m Finished)")
    assert [state for state, _ in watch.history] == ["InProgress", "Finished"]


async def test_the_async_hook_repeats_a_busy_start_without_blocking_the_loop(
    spotfire_conn_id, spotfire_emulator
):
    spotfire_emulator.set_config(as_max_concurrent_jobs=1)
    hook = SpotfireAsyncHook(spotfire_conn_id)
    first = await hook.start_automation_job_from_xml(job_xml(duration=0.4))
    ticks = 0

    async def ticker() -> None:  # runs only while the start's backoff yields the loop
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    beat = asyncio.create_task(ticker())
    source = AutomationJobSource(job_xml=job_xml(duration=0.1))
    second = await hook.start_automation_job(source, busy_retry=BusyRetry(initial_delay=0.2, max_delay=0.4))
    beat.cancel()
    assert second.job_id != first.job_id and second.status_code in ("Queued", "InProgress")
    assert spotfire_emulator.inspect()["counters"].get("as_busy", 0) >= 1
    assert ticks >= 3  # the loop kept running through at least one 0.1-0.2 s backoff
