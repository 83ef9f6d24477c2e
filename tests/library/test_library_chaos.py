"""Twenty uploads under fault injection: every one byte-exact, no open job, no duplicate item.

Faults (seeded, so the run is reproducible): ~7% 503 and ~3% 429 with ``Retry-After: 1`` on every
upload request, ~2% dropped connections (half before the server acted, half with the answer lost)
and access tokens that live 3 s. Dropped connections are applied to the job's own paths (chunk,
status, finish, cancel: ``.../upload/{jobId}...``) and not to "create job": a create whose answer
is lost cannot be recovered by any client (the job id is unknown), and the hook deliberately does
not repeat it (see ``test_create_is_not_repeated_once_the_server_may_have_acted``).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib

from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from tests.library.conftest import UPLOAD_PATH, item_bytes, sbdf_bytes, upload_jobs

UPLOADS = 20
FOLDER = "/Airflow/Chaos"


def test_twenty_uploads_survive_faults(spotfire_conn_id, spotfire_emulator, tmp_path):
    spotfire_emulator.http().post("/_emulator/library/folders", json={"path": FOLDER}).raise_for_status()
    spotfire_emulator.set_config(
        rate_503=0.07,
        rate_429=0.03,
        retry_after=1,
        drop_rate=0.02,
        drop_path_prefixes=[UPLOAD_PATH + "/"],
        token_lifetime=3,
        fault_seed=20240601,
    )
    files = []
    for i in range(UPLOADS):
        path = tmp_path / f"f{i}.sbdf"
        path.write_bytes(sbdf_bytes(20_000 + 13_337 * i, seed=i))
        files.append(path)

    def upload(i: int) -> str:
        hook = SpotfireHook(spotfire_conn_id)
        try:
            return hook.upload_sbdf_file(
                files[i], f"{FOLDER}/item{i}", chunk_size=32 * 1024, parallelism=3
            ).sha256
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

    # The faults really happened, and tokens were renewed during the run.
    faults = state["counters"].get("faults_injected", {})
    assert faults.get("503", 0) > 0 and faults.get("429", 0) > 0
    assert faults.get("drop_before", 0) + faults.get("drop_after", 0) > 0
    log = spotfire_emulator.requests_log()
    assert sum(r["path"] == "/spotfire/oauth2/token" for r in log) >= 2
    creates = [r for r in log if r["method"] == "PUT" and r["path"] == UPLOAD_PATH]
    assert not any((r["fault"] or "").startswith("drop") for r in creates)
