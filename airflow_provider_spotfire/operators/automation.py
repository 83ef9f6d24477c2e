"""Run a Spotfire Automation Services job (from the library or from job XML) and wait for it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator, Context, ResumableJobMixin

from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.api.automation import (
    AutomationJobSource,
    BusyRetry,
    ExecutionStatus,
    JobOutcome,
    JobWatch,
    failure_message,
    outcome_of,
    status_from_event,
)
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireJobError
from airflow_provider_spotfire.links import SpotfireAutomationJobLink, automation_job_url
from airflow_provider_spotfire.openlineage import automation_job_lineage
from airflow_provider_spotfire.operators.base import (
    SpotfireHookMixin,
    default_deferrable,
    poll_schedule_argument,
)
from airflow_provider_spotfire.triggers.automation import SpotfireAutomationJobTrigger
from airflow_provider_spotfire.triggers.events import validate_event
from airflow_provider_spotfire.triggers.schedule import PollSchedule

XCOM_JOB_ID = "job_id"
DEFAULT_POLL_INTERVAL = 15.0


def task_label(context: Context) -> str:
    """``dag.task (run <run_id>, try <n>)`` for abort reasons and messages."""
    ti = context.get("ti")
    if ti is None:
        return "(unknown task)"
    index = f"[{ti.map_index}]" if getattr(ti, "map_index", -1) >= 0 else ""
    return f"{ti.dag_id}.{ti.task_id}{index} (run {ti.run_id}, try {ti.try_number})"


class SpotfireRunAutomationJobOperator(SpotfireHookMixin, ResumableJobMixin, BaseOperator):
    """Starts an Automation Services job and (by default) waits until it finishes.

    Give exactly one of ``library_path``, ``library_id`` or ``job_xml``. ``job_xml`` is templated and
    may name a ``.xml`` file next to the DAG file (or in ``template_searchpath``).

    The job id goes to XCom (``job_id``) as soon as the job exists; the task returns the final
    ExecutionStatus as a dict (``JobId``, ``StatusCode``, ``Message``). Finished succeeds; Failed,
    Canceled, Missing and NotSet fail the task with the server's message; a ``Busy`` start is
    repeated with bounded backoff (``busy_retry``).

    Waiting is done in the triggerer when ``deferrable`` (the job is aborted at the task's
    execution_timeout, or when a user marks the task failed or clears it), otherwise on the
    worker (``on_kill`` aborts the job). On Airflow 3.3+ a retry of the task resumes watching a
    job that is still running instead of starting a second one (``ResumableJobMixin``).

    :param library_path: library path of a job file, e.g. ``/Jobs/Export sales``.
    :param library_id: library id (GUID) of a job file.
    :param job_xml: the job definition as XML, or the name of a ``.xml`` template file.
    :param wait_for_completion: wait for the job to end (False: return after the start).
    :param poll_interval: seconds between status requests while waiting, or a
        :class:`~airflow_provider_spotfire.triggers.schedule.PollSchedule` that backs off as the job ages.
        Not given: the connection's ``poll_interval`` extra, else 15 s.
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    :param abort_on_kill: abort the job when the task is killed (timeout, mark failed, clear).
    :param busy_retry: bound on re-starting a job the server answers Busy to.
    :param spotfire_conn_id: the ``spotfire`` connection.
    """

    template_fields: Sequence[str] = ("library_path", "library_id", "job_xml")
    template_ext: Sequence[str] = (".xml",)
    template_fields_renderers = {"job_xml": "xml"}
    operator_extra_links = (SpotfireAutomationJobLink(),)
    ui_color = "#d6e8f5"
    external_id_key = "spotfire_automation_job_id"

    def __init__(
        self,
        *,
        library_path: str | None = None,
        library_id: str | None = None,
        job_xml: str | None = None,
        wait_for_completion: bool = True,
        poll_interval: float | PollSchedule | None = None,
        deferrable: bool = default_deferrable(),
        abort_on_kill: bool = True,
        busy_retry: BusyRetry | None = None,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        given = [
            n
            for n, v in (("library_path", library_path), ("library_id", library_id), ("job_xml", job_xml))
            if v
        ]
        if len(given) != 1:
            raise SpotfireConfigurationError(
                f"{type(self).__name__} {kwargs.get('task_id', '')!r}: give exactly one of library_path "
                "(e.g. '/Jobs/Export sales'), library_id (the job file's GUID) or job_xml (inline XML or "
                f"a .xml file beside the DAG); got {', '.join(given) or 'none'}."
            )
        # a clear error for a bad value, here; not given: the connection's poll_interval at execute
        self.poll_schedule = poll_schedule_argument(poll_interval, DEFAULT_POLL_INTERVAL)
        self._poll_from_connection = poll_interval is None
        self.library_path = library_path
        self.library_id = library_id
        self.job_xml = job_xml
        self.wait_for_completion = wait_for_completion
        self.poll_interval = self.poll_schedule.interval
        self.deferrable = deferrable
        self.abort_on_kill = abort_on_kill
        self.busy_retry = busy_retry or BusyRetry()
        self.spotfire_conn_id = spotfire_conn_id
        self.job_id: str | None = None
        self._job_done = False
        self._label = ""
        self._deadline: float | None = None
        self._final: ExecutionStatus | None = None
        self._start_status: str | None = None

    # ---------------------------------------------------------------------------------- execution

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, then start (or resume watching) the job and wait as configured."""
        source = self._source()
        self._label = task_label(context)
        self._deadline = self.deadline_from(self.execution_timeout, time.time())
        if self._poll_from_connection:
            self.poll_schedule = self.connection_poll_schedule(self.poll_schedule)
            self.poll_interval = self.poll_schedule.interval
        self.log.info("Running the Automation Services %s.", source.describe())
        return self.execute_resumable(context)

    def _source(self) -> AutomationJobSource:
        """The rendered job source, checked before anything is started (one clear error otherwise)."""
        source = AutomationJobSource(
            library_path=(self.library_path or "").strip() or None,
            library_id=(self.library_id or "").strip() or None,
            job_xml=self.job_xml if self.job_xml and self.job_xml.strip() else None,
        )
        return source

    def submit_job(self, context: Context) -> str:
        """Start the job (repeating a Busy start) and publish its id and link; return the job id."""
        source = self._source()
        status = self.hook.start_automation_job(source, busy_retry=self.busy_retry)
        assert status.job_id  # check_started guarantees it
        self.log.info("Started Automation Services job %s (%s).", status.job_id, status.describe())
        try:
            self._adopt(status.job_id, context)
        except BaseException:  # the job id could not be recorded: no later try could find the job
            self._abort(status.job_id, f"Airflow task {self._label} could not record the job it started")
            raise
        self._start_status = status.status_code
        return status.job_id

    def _adopt(self, job_id: str, context: Context) -> None:
        """Remember the job (for on_kill) and push its id and link to XCom before any waiting."""
        self.job_id = job_id
        self._job_done = False
        self._start_status = None
        ti = context["ti"]
        ti.xcom_push(key=XCOM_JOB_ID, value=job_id)
        url = automation_job_url(self.hook.config, library_path=self.library_path, library_id=self.library_id)
        # Always pushed ("" when the job has no browsable address) so that rendering the link never
        # looks up a missing XCom, which Airflow logs as an error.
        ti.xcom_push(key=SpotfireAutomationJobLink.xcom_key, value=url or "")

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """StatusCode of a job started by an earlier try (404 reads as Missing)."""
        return self.hook.get_automation_job_status(str(external_id), missing_ok=True).status_code

    def is_job_active(self, status: str) -> bool:
        """The job may still run (``outcome_of`` says WAIT: Queued, InProgress, Busy): resume watching it."""
        return outcome_of(status) is JobOutcome.WAIT

    def is_job_succeeded(self, status: str) -> bool:
        return outcome_of(status) is JobOutcome.SUCCESS

    # The mixin returns this method's value as the task's result when it resumes a running job,
    # so it returns the final status (the SDK annotates None).
    def poll_until_complete(self, external_id: Any, context: Context) -> dict[str, Any]:  # type: ignore[override]
        """Wait for the job: defer to the trigger, or poll here; return the final status as a dict."""
        job_id = str(external_id)
        if self.job_id != job_id:  # resuming a job started by an earlier try
            self.log.info(
                "Resuming the wait for Automation Services job %s started by an earlier try.", job_id
            )
            self._adopt(job_id, context)
        if not self.wait_for_completion:
            status = self.hook.get_automation_job_status(job_id, missing_ok=True)
            self._final = status
            self.log.info(
                "Not waiting for job %s (wait_for_completion=False); it is %s.", job_id, status.describe()
            )
            return status.to_dict()
        if self.deferrable:
            self.defer(
                trigger=SpotfireAutomationJobTrigger(
                    job_id=job_id,
                    spotfire_conn_id=self.spotfire_conn_id,
                    poll_interval=self.poll_schedule,
                    deadline=self._deadline,
                    abort_unfinished=True,
                    abort_on_kill=self.abort_on_kill,
                    task_label=self._label,
                    last_status=self._start_status,
                ),
                method_name="execute_complete",
                # the trigger enforces the deadline itself (and aborts the job); this is only a backstop
                timeout=timedelta(seconds=self._deadline - time.time() + 300) if self._deadline else None,
            )
        self._final = self._wait(job_id, context)
        return self._final.to_dict()

    def _wait(self, job_id: str, context: Context) -> ExecutionStatus:
        """Poll on the worker until the job ends; log each state change once."""
        watch = JobWatch(job_id, last_status=self._start_status, logger=self.log)
        started = time.time()
        while True:
            try:
                status = self.hook.get_automation_job_status(job_id, missing_ok=True)
            except Exception as exc:
                self._give_up(job_id, context, f"the status could not be read ({exc})")
                raise
            watch.observe(status)
            if status.outcome is JobOutcome.SUCCESS:
                self._job_done = True
                return status
            if status.outcome is JobOutcome.FAILURE:
                self._job_done = True
                raise SpotfireJobError(failure_message(status), job_id=job_id, status=status.status_code)
            if status.outcome is JobOutcome.UNDETERMINED:
                self._abort(job_id, f"Airflow task {self._label} gave up on it: status {status.status_code}")
                raise SpotfireJobError(failure_message(status), job_id=job_id, status=status.status_code)
            time.sleep(self.poll_schedule.delay(time.time() - started))

    def get_job_result(self, external_id: Any, context: Context) -> dict[str, Any]:
        """The final ExecutionStatus as a dict (read again when an earlier try already finished the job)."""
        if self._final is None or self._final.job_id != str(external_id):
            self._adopt(str(external_id), context)
            self._final = self.hook.get_automation_job_status(str(external_id), missing_ok=True)
            self.log.info(
                "Automation Services job %s had already finished: %s.", external_id, self._final.describe()
            )
        return self._final.to_dict()

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: return the final status, or fail with the job's message."""
        self._label = task_label(context)
        job_id = event.get("job_id") if isinstance(event, dict) else None
        if isinstance(event, dict) and event.get("status") == "error" and job_id:
            self._give_up(str(job_id), context, str(event.get("message")))
        parsed = validate_event(event)
        self.job_id = parsed.job_id
        self._final = status_from_event(parsed.job_id, parsed.remote_state, parsed.details)
        self.log.info("Automation Services job %s finished: %s", parsed.job_id, self._final.describe())
        return self._final.to_dict()

    # ---------------------------------------------------------------------------------- stopping the job

    def _can_resume(self, context: Context) -> bool:
        """True when a retry will follow and will find the job id again (Airflow 3.3 task state store)."""
        ti = context.get("ti")
        if not getattr(self, "durable", False) or context.get("task_state_store") is None or ti is None:
            return False
        return int(getattr(ti, "try_number", 1)) <= int(self.retries or 0)

    def _give_up(self, job_id: str, context: Context, why: str) -> None:
        """The wait failed for a reason of ours: keep the job for a resuming retry, else abort it."""
        if self._can_resume(context):
            self.log.warning(
                "Leaving Automation Services job %s running (%s): the next try resumes watching it.",
                job_id,
                why,
            )
            return
        self._abort(job_id, f"Airflow task {self._label} stopped waiting: {why}"[:500])

    def _abort(self, job_id: str, reason: str) -> None:
        try:
            self.hook.abort_automation_job(job_id, reason)
        except Exception as exc:
            self.log.warning("Could not abort Automation Services job %s: %s", job_id, exc)
            return
        self._job_done = True
        self.log.info("Aborted Automation Services job %s (reason: %s).", job_id, reason)

    def on_kill(self) -> None:
        """The task was killed (execution_timeout, mark failed, clear): abort the job it is waiting for."""
        if self.job_id and not self._job_done and self.abort_on_kill:
            self._abort(
                self.job_id, f"Airflow task {self._label} was killed (timeout, marked failed or cleared)"
            )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the library job file as input dataset, the job id as an externalQuery run facet."""
        return automation_job_lineage(
            self.hook.config,
            library_path=self.library_path,
            job_id=self.job_id,
            status=self._final.status_code if self._final else None,
        )


__all__ = ["SpotfireRunAutomationJobOperator"]
