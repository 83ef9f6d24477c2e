"""Triggerer restarts and HA in a real Airflow, with 100 deferred Automation Services tasks and 10 upload waits.

One DAG run (``scale_dags/spotfire_triggers_scale.py``) defers 100 AS tasks (jobs that run 900 s on the
emulator clock) and 10 upload-job sensors (jobs opened by the test). Then, in order:

1. the triggerer is stopped with SIGTERM mid-wait and a new one started: every wait resumes, nothing
   is aborted or started again;
2. that triggerer is stopped and two run at once (HA, each capped below the number of triggers so
   both hold some): in a window of steady polling, every job is polled at the rate of one poller;
   then 5 triggers are moved from one to the other (what Airflow does when it takes a triggerer for
   dead): Airflow 3.3 calls their on_kill, yet no job is aborted and every job is still polled;
3. one deferred task is marked failed and one is cleared: the failed one's job is aborted exactly once;
   the cleared one's job is aborted at most once (not when its next try already resumed it);
4. the emulator clock jumps past the jobs' end and the test finishes 8 upload jobs and cancels 2:
   every task ends with the outcome its job had, no job is left running, none was started twice.

Own stack (not the session one): it restarts triggerers, and needs a larger executor.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fullstack.stack import FullStack, wait_for

pytestmark = [pytest.mark.fullstack, pytest.mark.timeout(2400)]

SCALE_DAGS = Path(__file__).with_name("scale_dags")
DAG_ID = "spotfire_triggers_scale"
N_JOBS = 100
N_UPLOADS = 10
POLL = 2.0
STATUS = "/spotfire/api/rest/as/job/status/"
ABORT = "/spotfire/api/rest/as/job/abort/"
UPLOAD_STATUS = "/spotfire/api/rest/library/v1/upload/"
# a loaded 2-core machine needs time to launch ~110 task processes
DEFER_TIMEOUT = float(os.environ.get("SPOTFIRE_FULLSTACK_SCALE_TIMEOUT", "900"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    s = FullStack(tmp_path_factory.mktemp("scale-home"), parallelism=12, dags_source=SCALE_DAGS)
    # 110 task processes and 2 triggerers write to one sqlite file: wait for its lock instead of
    # failing after pysqlite's default 5 s ("database is locked")
    s.extra_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{s.home / 'airflow.db'}?timeout=120"
    # a loaded machine delays heartbeats: Airflow must not take a live scheduler's tasks or a live
    # triggerer's triggers for orphans (that starts a job a second time, or polls from two triggerers)
    s.extra_env.update(
        {
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "600",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "3600",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "1200",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "120",
        }
    )
    try:
        s.start(timeout=240)
    except Exception as exc:
        report = s.stop()
        pytest.fail(f"the stack did not start: {exc}\n{report}\n{s.all_tails()}", pytrace=False)
    s.emulator_call(
        "PATCH",
        "/_emulator/config",
        json={
            "as_max_concurrent_jobs": 1000,
            "request_log_size": 500_000,
            "max_jobs_per_client": 50,
            "max_jobs_per_server": 200,
        },
    )
    yield s
    # the scheduler drains 110 LocalExecutor workers before it exits: give it longer than the default
    report = s.stop(timeout=120)
    assert not (report.killed or report.survivors), f"{report}\n{s.all_tails()}"


def _hook(stack: FullStack, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

    monkeypatch.setenv("AIRFLOW_CONN_SPOTFIRE_SCALE", stack.env()["AIRFLOW_CONN_SPOTFIRE_DEFAULT"])
    return SpotfireHook("spotfire_scale")


def _open_upload_jobs(hook: Any) -> list[Any]:
    from airflow_provider_spotfire.api.library import FIRST_CHUNK
    from tests.library.conftest import sbdf_bytes

    jobs = []
    for i in range(N_UPLOADS):
        data = sbdf_bytes(100)
        job = hook.create_upload_job(
            f"/Airflow/Reports/scale-{i}", number_of_bytes=len(data), number_of_chunks=1
        )
        hook.upload_chunk(job, FIRST_CHUNK, data)
        jobs.append(job)
    return jobs


def _trigger_run(stack: FullStack, upload_ids: list[str]) -> str:
    stack.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
    resp = stack.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"logical_date": datetime.now(UTC).isoformat(), "conf": {"upload_jobs": upload_ids}},
    )
    resp.raise_for_status()
    return resp.json()["dag_run_id"]


def _task_instances(stack: FullStack, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run (the REST API pages by 100 at most)."""
    found: list[dict[str, Any]] = []
    while True:
        page = stack.get(
            f"{stack.run_path(DAG_ID, run_id)}/taskInstances", params={"limit": 100, "offset": len(found)}
        )
        found += page["task_instances"]
        if not page["task_instances"] or len(found) >= page["total_entries"]:
            return found


def _states(stack: FullStack, run_id: str) -> dict[tuple[str, int], str | None]:
    return {(t["task_id"], t["map_index"]): t["state"] for t in _task_instances(stack, run_id)}


def _all_deferred(stack: FullStack, run_id: str) -> bool:
    states = _states(stack, run_id)
    waits = [s for (task_id, _), s in states.items() if task_id in ("as_job", "upload_wait")]
    return len(waits) == N_JOBS + N_UPLOADS and all(s == "deferred" for s in waits)


def _log_since(stack: FullStack, seq: int) -> list[dict[str, Any]]:
    return [e for e in stack.emulator("/_emulator/requests", since=seq, limit=500_000) if e["seq"] > seq]


def _as_jobs(stack: FullStack) -> list[dict[str, Any]]:
    """Every AS job the emulator knows, each as its single-job view (status, source, abort reason)."""
    try:
        ids = [j["id"] for j in stack.emulator("/_emulator/automation/jobs")]
    except httpx.HTTPStatusError:  # an emulator without the job list
        return stack.emulator("/_emulator/state")["as_jobs"]
    return [stack.emulator(f"/_emulator/automation/jobs/{job_id}") for job_id in ids]


def _polled_ids(entries: list[dict[str, Any]], prefix: str) -> Counter[str]:
    return Counter(
        e["path"][len(prefix) :] for e in entries if e["method"] == "GET" and e["path"].startswith(prefix)
    )


def _aborts(entries: list[dict[str, Any]]) -> Counter[str]:
    return Counter(
        e["path"][len(ABORT) :] for e in entries if e["method"] == "POST" and e["path"].startswith(ABORT)
    )


def _restart_wait(stack: FullStack, since: int, job_ids: set[str], upload_ids: set[str]) -> None:
    """Every AS job and upload job polled again after ``since`` (the new triggerer took over)."""

    def resumed() -> bool:
        log = _log_since(stack, since)
        return job_ids <= set(_polled_ids(log, STATUS)) and upload_ids <= set(_polled_ids(log, UPLOAD_STATUS))

    wait_for("every wait to poll again from the new triggerer(s)", resumed, timeout=180, interval=2)


def _triggerer_ids(stack: FullStack) -> Counter[int | None]:
    import sqlite3

    with sqlite3.connect(stack.home / "airflow.db") as db:
        rows = db.execute(
            "SELECT t.triggerer_id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = ? AND ti.state = 'deferred'",
            (DAG_ID,),
        ).fetchall()
    return Counter(r[0] for r in rows)


def test_restart_ha_and_kill_with_110_deferred_waits(stack: FullStack, monkeypatch: pytest.MonkeyPatch):
    hook = _hook(stack, monkeypatch)
    uploads = _open_upload_jobs(hook)
    upload_ids = {j.job_id for j in uploads}
    run_id = _trigger_run(stack, sorted(upload_ids))
    wait_for("110 deferred tasks", lambda: _all_deferred(stack, run_id), timeout=DEFER_TIMEOUT, interval=3)
    jobs = {j["jobId"]: j for j in _as_jobs(stack)}
    job_ids = {i for i, j in jobs.items() if j["status"] in ("Queued", "InProgress")}
    # one running job per task (a try killed by Airflow before it deferred aborted its own job)
    assert len(job_ids) == N_JOBS, f"{len(job_ids)} running jobs for {N_JOBS} tasks"
    aborted_before = _aborts(_log_since(stack, 0))
    assert set(aborted_before) == set(jobs) - job_ids

    _restart(stack, job_ids, upload_ids)
    assert _aborts(_log_since(stack, 0)) == aborted_before, "a triggerer restart must not abort any job"
    assert {j["jobId"] for j in _as_jobs(stack)} == set(jobs), "a restart must not start any job"
    _two_triggerers(stack, job_ids, upload_ids)
    killed = _kill_two_tasks(stack, run_id)
    _finish_everything(stack, hook, uploads, run_id)
    aborts = _aborts(_log_since(stack, 0)) - aborted_before
    failed_job, cleared_job = killed
    assert aborts[failed_job] == 1 and aborts[cleared_job] <= 1, aborts
    assert set(aborts) <= set(killed), f"unexpected aborts: {aborts}"
    final = _as_jobs(stack)
    assert not [j for j in final if j["status"] in ("Queued", "InProgress")], "a job was left running"
    new_jobs = {j["jobId"] for j in final} - set(jobs)
    assert len(new_jobs) <= 1, f"only the cleared task's new try may start a job: {new_jobs}"
    hook.close()


def _restart(stack: FullStack, job_ids: set[str], upload_ids: set[str]) -> None:
    """1. SIGTERM the triggerer mid-wait, start a new one: every wait polls again."""
    seq = stack.last_request_seq()
    assert stack.stop_process("triggerer") == 0
    stack.spawn_triggerer("triggerer-2")
    _restart_wait(stack, seq, job_ids, upload_ids)


def _two_triggerers(stack: FullStack, job_ids: set[str], upload_ids: set[str]) -> None:
    """2. HA: two triggerers at once (each capped below the 110 triggers, so both hold some); each
    job is polled at the rate of one poller."""
    assert stack.stop_process("triggerer-2") == 0
    seq = stack.last_request_seq()
    stack.spawn_triggerer("triggerer-3", capacity=70)
    # the second starts once the first is full: two triggerers claiming at the same instant can take
    # the same triggers on sqlite (no row locks), and Airflow then moves them, which step 2b covers
    wait_for("the first HA triggerer to fill up", lambda: 70 in _triggerer_ids(stack).values(), timeout=180)
    stack.spawn_triggerer("triggerer-4", capacity=70)
    _restart_wait(stack, seq, job_ids, upload_ids)
    holders = _triggerer_ids(stack)
    assert None not in holders and len(holders) == 2, f"both triggerers hold triggers: {holders}"
    window_start = stack.last_request_seq()
    time.sleep(45)  # long enough that a loaded machine still polls every job in it
    window = _log_since(stack, window_start)
    polls = _polled_ids(window, STATUS)
    one_poller = _span_seconds(window) / POLL
    assert set(polls) == job_ids, _not_polled_report(stack, job_ids - set(polls), window_start)
    assert max(polls.values()) <= one_poller + 2, f"a job polled by both triggerers: {polls.most_common(3)}"
    assert min(polls.values()) >= one_poller / 2 - 1, f"a job not polled: {polls.most_common()[-3:]}"
    assert not _aborts(window)
    _move_triggers(stack, job_ids)


def _move_triggers(stack: FullStack, job_ids: set[str], count: int = 5) -> None:
    """2b. Airflow moves triggers between live triggerers (one it took for dead; two that claimed the same
    trigger on a database without row locks). The losing triggerer cancels them and Airflow 3.3 calls
    their on_kill: the task is still deferred, so no job may be aborted, and the other triggerer polls on."""
    import sqlite3

    holders = _triggerer_ids(stack)
    (source, _), (target, _) = holders.most_common(2)
    with sqlite3.connect(stack.home / "airflow.db", timeout=120) as db:
        moved = [
            r[0]
            for r in db.execute(
                "SELECT t.id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
                "WHERE ti.dag_id = ? AND ti.task_id = 'as_job' AND ti.state = 'deferred' AND t.triggerer_id = ? "
                "LIMIT ?",
                (DAG_ID, source, count),
            )
        ]
        db.execute(
            f"UPDATE trigger SET triggerer_id = ? WHERE id IN ({','.join('?' * len(moved))})",
            [target, *moved],
        )
    assert len(moved) == count
    seq = stack.last_request_seq()
    time.sleep(20)  # both triggerers load their triggers again (every second or so)
    after = _log_since(stack, seq)
    assert not _aborts(after), f"a moved trigger aborted its job: {_aborts(after)}"
    assert set(_polled_ids(after, STATUS)) == job_ids, "every job, moved or not, is still polled"
    assert _triggerer_ids(stack)[target] == holders[target] + count


def _not_polled_report(stack: FullStack, missing: set[str], window_start: int) -> str:
    """Why jobs went unpolled in the window: their last polls (time, status), the poll rate, the triggerers' logs."""
    log = _log_since(stack, 0)
    lines = [f"{len(missing)} jobs not polled in the window (from seq {window_start}):"]
    for job in sorted(missing)[:8]:
        mine = [e for e in log if e["method"] == "GET" and e["path"] == STATUS + job]
        lines.append(f"  {job}: last polls {[(e['seq'], e['time'][11:19], e['status']) for e in mine[-4:]]}")
    per_second = Counter(e["time"][11:19] for e in log[-20000:] if e["path"].startswith(STATUS))
    lines.append(f"status polls per second (last 20k requests): {sorted(per_second.items())[-90:]}")
    other = Counter(
        (e["method"], e["path"].split("/")[-2] if "/" in e["path"] else e["path"], e["status"])
        for e in log
        if e["seq"] > window_start and not e["path"].startswith(STATUS)
    )
    lines.append(f"other requests in the window: {other.most_common(12)}")
    lines.append(f"holders now: {_triggerer_ids(stack)}")
    for name in ("triggerer-3", "triggerer-4"):
        lines.append(f"--- {name}\n{stack.tail(name, 5000)}")
    return "\n".join(lines)


def _kill_two_tasks(stack: FullStack, run_id: str) -> tuple[str, str]:
    """3. Mark as_job[0] failed and clear as_job[1] while deferred. The failed task's job is aborted. The
    cleared task's job is aborted, unless its next try (which resumes a running job) is already waiting
    on it when the old trigger's on_kill reads the task's state: then that one job carries on."""
    failed_job, cleared_job = _job_of(stack, 0), _job_of(stack, 1)
    _mark_failed(stack, run_id, 0)
    _clear(stack, run_id, 1)

    def settled() -> bool:
        aborted = set(_aborts(_log_since(stack, 0)))
        resumed = cleared_job in _polled_by_a_later_try(stack, run_id, cleared_job)
        return failed_job in aborted and (cleared_job in aborted or resumed)

    wait_for("the killed tasks' jobs to be aborted or resumed", settled, timeout=120, interval=2)
    return failed_job, cleared_job


def _polled_by_a_later_try(stack: FullStack, run_id: str, job_id: str) -> set[str]:
    """``{job_id}`` when as_job[1]'s next try logged that it resumed waiting for that job."""
    log = stack.task_log(
        DAG_ID, run_id, "as_job", 2, map_index=1
    )  # not there yet: an HTTP error wait_for retries
    return {job_id} if f"Resuming the wait for Automation Services job {job_id}" in log else set()


def _finish_everything(stack: FullStack, hook: Any, uploads: list[Any], run_id: str) -> None:
    """4. AS jobs end by the emulator clock, uploads are finished (8) or cancelled (2); the run ends."""
    # the cleared task's new try starts a job of its own: the clock must jump after that start
    redeferred = lambda: _states(stack, run_id)[("as_job", 1)] in ("deferred", "success", "failed")  # noqa: E731
    wait_for("the cleared task to defer again", redeferred, timeout=DEFER_TIMEOUT, interval=3)
    stack.emulator_call("POST", "/_emulator/clock/advance", json={"seconds": 1000})
    for job in uploads[:8]:
        hook.finish_upload_job(job)
    for job in uploads[8:]:
        hook.cancel_upload_job(job)
    ended = lambda: _run_state(stack, run_id) in ("success", "failed")  # noqa: E731
    wait_for("the run to end", ended, timeout=DEFER_TIMEOUT, interval=3)
    _check_outcomes(stack, run_id, uploads)


def _span_seconds(entries: list[dict[str, Any]]) -> float:
    times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in entries]
    return max(times) - min(times) if times else 0.0


def _ti_path(stack: FullStack, run_id: str, map_index: int) -> str:
    return f"{stack.run_path(DAG_ID, run_id)}/taskInstances/as_job/{map_index}"


def _job_of(stack: FullStack, map_index: int) -> str:
    """The id of the job task ``as_job[map_index]`` started (its XML says ``scale job <index>``)."""
    marker = f'message="scale job {map_index}"'
    (job_id,) = [j["jobId"] for j in _as_jobs(stack) if marker in j["source"]["value"]]
    return job_id


def _mark_failed(stack: FullStack, run_id: str, map_index: int) -> None:
    resp = stack.request("PATCH", _ti_path(stack, run_id, map_index), json={"new_state": "failed"})
    assert resp.status_code < 300, resp.text


def _clear(stack: FullStack, run_id: str, map_index: int) -> None:
    resp = stack.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        json={
            "dag_run_id": run_id,
            "task_ids": [["as_job", map_index]],
            "dry_run": False,
            "only_failed": False,
        },
    )
    assert resp.status_code < 300, resp.text


def _run_state(stack: FullStack, run_id: str) -> str:
    return stack.get(stack.run_path(DAG_ID, run_id))["state"]


def _check_outcomes(stack: FullStack, run_id: str, uploads: list[Any]) -> None:
    from tests.fullstack.scale_dags.spotfire_triggers_scale import outcome_of_index

    states = _states(stack, run_id)
    wrong = []
    for i in range(2, N_JOBS):
        expected = "failed" if outcome_of_index(i) == "Failed" else "success"
        if states[("as_job", i)] != expected:
            wrong.append((f"as_job[{i}]", states[("as_job", i)], expected))
    assert states[("as_job", 0)] == "failed"
    by_id = {
        t["rendered_fields"].get("job_id"): t
        for t in _task_instances(stack, run_id)
        if t["task_id"] == "upload_wait"
    }
    for n, job in enumerate(uploads):
        expected = "success" if n < 8 else "failed"
        state = by_id[job.job_id]["state"] if job.job_id in by_id else None
        if state != expected:
            wrong.append((f"upload_wait {job.job_id}", state, expected))
    assert not wrong, wrong
