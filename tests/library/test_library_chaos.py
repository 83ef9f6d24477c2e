"""Twenty uploads under fault injection: every one byte-exact, no open job, no duplicate item.

Reproducible, per request: the test draws each fault from its own RNG seeded by (upload, chunk)
-- never from one RNG shared by threads -- and scripts it on the emulator for that job's next
request, so each job meets the same faults at the same requests on every run, whatever the
thread interleaving. Uploads run 4 at a time, each with ``parallelism=1`` so that "the job's
next request" is well defined (parallel chunks under faults are covered by the other tests).

Faults: ~7% 503 and ~3% 429 with ``Retry-After: 1``, ~2% dropped connections (half before the
server acted, half with the answer lost), on chunk, status and finish requests; access tokens
live 3 s. Not on "create job": a create whose answer is lost cannot be recovered by any client
(see ``test_create_is_not_repeated_once_the_server_may_have_acted``), and a refused create is
tested in ``test_create_is_retried_when_refused``.

Why not the emulator's random ``rate_503``/``rate_429``: one RNG draw per request in arrival
order, shared by all threads, so the faults each upload meets change from run to run.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import random
import threading
from typing import Any

from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from tests.library.conftest import UPLOAD_PATH, item_bytes, sbdf_bytes, upload_jobs

UPLOADS = 20
FOLDER = "/Airflow/Chaos"
SEED = 20240601
CHUNK = 32 * 1024
FAULT_WEIGHTS = (("503", 0.07), ("429", 0.03), ("drop_before", 0.01), ("drop_after", 0.01))


def draw_fault(upload: int, request_no: int) -> str | None:
    """The fault of the ``request_no``-th job request of ``upload``: its own seeded RNG."""
    r = random.Random(f"{SEED}:{upload}:{request_no}").random()
    for kind, weight in FAULT_WEIGHTS:
        if r < weight:
            return kind
        r -= weight
    return None


class FaultScript:
    """Scripts the drawn fault of each upload's next job request (chunk, then status/finish)."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.lock = threading.Lock()
        self.planned: dict[str, list[tuple[int, str]]] = {}
        self.job_of: dict[int, str] = {}

    def plan(self, upload: int, job_id: str, request_no: int) -> None:
        fault = draw_fault(upload, request_no)
        if fault is None:
            return
        with self.lock:
            self.job_of[upload] = job_id
            self.planned.setdefault(job_id, []).append((request_no, fault))
            self.emulator.inject_faults(fault, path_prefix=f"{UPLOAD_PATH}/{job_id}")


def test_twenty_uploads_survive_faults(spotfire_conn_id, spotfire_emulator, tmp_path):
    spotfire_emulator.http().post("/_emulator/library/folders", json={"path": FOLDER}).raise_for_status()
    spotfire_emulator.set_config(retry_after=1, token_lifetime=3)
    script = FaultScript(spotfire_emulator)
    files = []
    for i in range(UPLOADS):
        path = tmp_path / f"f{i}.sbdf"
        path.write_bytes(sbdf_bytes(20_000 + 13_337 * i, seed=i))
        files.append(path)

    def upload(i: int) -> str:
        hook = SpotfireHook(spotfire_conn_id)
        job_ids: list[str] = []

        def created(job: Any) -> None:
            job_ids.append(job.job_id)
            script.plan(i, job.job_id, 1)  # the first chunk

        def acked(progress: Any) -> None:  # chunk n acknowledged: plan the request after it
            script.plan(i, job_ids[0], progress.chunks_sent + 1)

        try:
            result = hook.upload_sbdf_file(
                files[i],
                f"{FOLDER}/item{i}",
                chunk_size=CHUNK,
                parallelism=1,
                on_job_created=created,
                progress=acked,
            )
            return result.sha256
        finally:
            hook.close()

    with cf.ThreadPoolExecutor(4) as pool:
        shas = list(pool.map(upload, range(UPLOADS)))

    for i, path in enumerate(files):
        local = hashlib.sha256(path.read_bytes()).hexdigest()
        assert shas[i] == local
        assert hashlib.sha256(item_bytes(spotfire_emulator, f"{FOLDER}/item{i}")).hexdigest() == local
    state = spotfire_emulator.inspect()
    paths = [it["path"] for it in state["library"]["items"] if it["path"].startswith(FOLDER + "/")]
    assert sorted(paths) == sorted(f"{FOLDER}/item{i}" for i in range(UPLOADS))  # no duplicates
    assert upload_jobs(spotfire_emulator, "open") == []
    assert sum(j["status"] == "finished" for j in upload_jobs(spotfire_emulator)) == UPLOADS

    # Reproducible: every planned fault was met, by the job it was planned for, in the planned order.
    assert spotfire_emulator.http().get("/_emulator/faults").json() == []
    log = spotfire_emulator.requests_log()
    for job_id, planned in script.planned.items():
        met = [r["fault"] for r in log if r["path"].startswith(f"{UPLOAD_PATH}/{job_id}") and r["fault"]]
        assert met == [fault for _, fault in planned]
    for i, path in enumerate(files):  # and the plan is a pure function of (upload, request number)
        requests = -(-path.stat().st_size // CHUNK) + 1  # the chunks, then the status before finishing
        expected = [(n, f) for n in range(1, requests + 1) if (f := draw_fault(i, n))]
        assert script.planned.get(script.job_of.get(i, ""), []) == expected
    kinds = {fault for planned in script.planned.values() for _, fault in planned}
    assert {"503", "429"} <= kinds and kinds & {"drop_before", "drop_after"}  # the faults really happened
    assert sum(r["path"] == "/spotfire/oauth2/token" for r in log) >= 2  # tokens were renewed
    creates = [r for r in log if r["method"] == "PUT" and r["path"] == UPLOAD_PATH]
    assert len(creates) == UPLOADS and not any(r["fault"] for r in creates)
