"""The full-stack xfail for apache/airflow#72716 matches the race's whole signature and nothing else.

No Airflow is started: the task instance, its log events and the scheduler's event log are built here
the way the REST API returns them, and ``_hit_by_upstream_race`` must tell the race from regressions
that end the same way (task failed after its deferral).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fullstack.test_dag_runs import (
    DEFERRED,
    FIRED,
    STALE_EVENT,
    STATE_MISMATCH,
    Task,
    _hit_by_upstream_race,
)

TI = {
    "id": "0199-ti",
    "dag_id": "example_spotfire_automation",
    "task_id": "run_job",
    "dag_run_id": "manual__2026-12-01",  # the REST API's name for the run id of a task instance
    "map_index": -1,
    "try_number": 1,
    "state": "failed",
}
SUCCESS = "TriggerEvent<{'status': 'success', 'job_id': 'j1', 'job_state': 'Finished'}>"
FAILURE = "TriggerEvent<{'status': 'failed', 'job_id': 'j1', 'job_state': 'Failed'}>"
STALE = (
    f"Executor LocalExecutor reported that the task instance <TaskInstance: ...> {STALE_EVENT}. Learn more"
)
OPERATOR = "airflow.task.operators.airflow_provider_spotfire.operators.automation"


class FakeApi:
    """Answers ``/api/v2/eventLogs`` like Airflow's REST API: exact-match filters on the given entries."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.queries: list[dict[str, Any]] = []

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        assert path == "/api/v2/eventLogs"
        self.queries.append(params)
        return {"event_logs": [e for e in self.entries if all(e.get(k) == v for k, v in params.items())]}


def event(second: int, text: str, **extra: Any) -> dict[str, Any]:
    return {"timestamp": f"2026-12-01T20:00:{second:02d}Z", "event": text, "level": "info", **extra}


def mismatch(second: int, extra: str = STALE, **key: Any) -> dict[str, Any]:
    ti_key = {k: TI[k] for k in ("dag_id", "task_id", "map_index", "try_number")}
    ti_key["run_id"] = TI["dag_run_id"]  # the event log's name for it
    return {
        **ti_key,
        **key,
        "event": STATE_MISMATCH,
        "extra": extra,
        "when": f"2026-12-01T20:00:{second:02d}Z",
    }


def task(*events: dict[str, Any], **ti: Any) -> Task:
    return Task({**TI, **ti}, logs={1: list(events)})


RACED = (event(1, DEFERRED), event(5, FIRED, result=SUCCESS), event(6, "Resuming", logger=OPERATOR))


def test_the_whole_signature_is_the_race() -> None:
    api = FakeApi([mismatch(7)])
    assert _hit_by_upstream_race(api, task(*RACED), []) is True  # type: ignore[arg-type]
    (query,) = api.queries
    key = ("dag_id", "task_id", "map_index", "try_number")  # exactly this task instance and try
    assert query == {**{k: TI[k] for k in key}, "run_id": TI["dag_run_id"], "event": STATE_MISMATCH}


def test_the_race_with_the_resumed_try_still_queued_is_the_race_too() -> None:
    queued = STALE.replace("is running", "is queued")
    assert queued != STALE
    assert _hit_by_upstream_race(FakeApi([mismatch(7, queued)]), task(*RACED), []) is True  # type: ignore[arg-type]


def test_the_fired_event_may_be_only_in_the_triggerers_own_log() -> None:
    line = f"2026-12-01T20:00:05Z [info     ] {FIRED}  [airflow.jobs.triggerer] result={SUCCESS} ti_id={TI['id']}"
    events = (event(1, DEFERRED), event(6, "Resuming", logger=OPERATOR))
    assert _hit_by_upstream_race(FakeApi([mismatch(7)]), task(*events), [line]) is True  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "the_task", "entries"),
    [
        ("the task succeeded", task(*RACED, state="success"), [mismatch(7)]),
        ("it never deferred", task(RACED[1], RACED[2]), [mismatch(7)]),
        ("the trigger fired a failure", task(RACED[0], event(5, FIRED, result=FAILURE)), [mismatch(7)]),
        ("the trigger never fired", task(RACED[0]), [mismatch(7)]),
        (
            "our resumed code raised",
            task(*RACED, event(6, "Task failed with exception", level="error")),
            [mismatch(7)],
        ),
        (
            "our code logged an error",
            task(*RACED, event(6, "boom", level="error", logger=OPERATOR)),
            [mismatch(7)],
        ),
        ("no state mismatch recorded", task(*RACED), []),
        ("a mismatch of another kind", task(*RACED), [mismatch(7, extra="finished with state failed")]),
        ("the mismatch came before the event", task(*RACED), [mismatch(4)]),
        ("the mismatch is another try's", task(*RACED), [mismatch(7, try_number=2)]),
        ("the mismatch is another map index's", task(*RACED), [mismatch(7, map_index=3)]),
    ],
)
def test_the_same_symptom_without_the_whole_signature_is_a_failure(
    case: str, the_task: Task, entries: list[dict[str, Any]]
) -> None:
    assert _hit_by_upstream_race(FakeApi(entries), the_task, []) is False, case  # type: ignore[arg-type]
