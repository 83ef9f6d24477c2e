"""Library upload through SpotfireHook against the emulator over real HTTP.

Every test checks the remote effect in the emulator: the item's bytes (downloaded through the
emulator's content endpoint), its upload jobs (``/_emulator/state``) and its request log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire.api.library import (
    FIRST_CHUNK,
    UploadJob,
    build_upload_chunk,
    chunk_digests,
)
from airflow_provider_spotfire.exceptions import (
    SpotfireBadRequestError,
    SpotfireConfigurationError,
    SpotfireConflictError,
    SpotfireDataError,
    SpotfireJobError,
    SpotfireLimitExceededError,
    SpotfireNotFoundError,
    SpotfirePermissionError,
    SpotfireTransportError,
    UploadAborted,
)
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from airflow_provider_spotfire.upload.engine import ChunkedUpload
from airflow_provider_spotfire.upload.options import UploadOptions
from tests.library.conftest import (
    NO_RETRIES,
    REPORTS,
    UPLOAD_PATH,
    assert_nothing_left,
    chunk_number,
    chunk_posts,
    item_bytes,
    items_at,
    sha256_file,
    upload_jobs,
    upload_requests,
)

KIB = 1024
JOB_PATHS = UPLOAD_PATH + "/"  # chunk, status, cancel and finish (not create)


# ---- the happy path -------------------------------------------------------------------------------
def test_parallel_upload_is_byte_exact_with_digests(spotfire_emulator, hook, make_sbdf):
    path = make_sbdf(1_000_003)
    seen: list[Any] = []
    result = hook.upload_sbdf_file(
        path,
        f"{REPORTS}/sales",
        description="Daily sales",
        keywords=["sales", "daily"],
        chunk_size=128 * KIB,
        parallelism=3,
        progress=seen.append,
    )

    local = sha256_file(path)
    assert result.sha256 == local
    assert result.bytes == 1_000_003 and result.chunks == 8
    assert result.finished_at
    content = item_bytes(spotfire_emulator, f"{REPORTS}/sales")
    assert hashlib.sha256(content).hexdigest() == local
    (item,) = items_at(spotfire_emulator, f"{REPORTS}/sales")
    assert item["type"] == "spotfire.sbdf"
    assert item["description"] == "Daily sales" and item["keywords"] == ["sales", "daily"]
    (job,) = upload_jobs(spotfire_emulator)
    assert job["jobId"] == result.job_id and job["status"] == "finished"
    assert job["numberOfBytes"] == 1_000_003 and job["numberOfChunks"] == 8  # declared up front

    log = upload_requests(spotfire_emulator)
    posts = chunk_posts(log)
    assert sorted(chunk_number(r) for r in posts) == list(range(FIRST_CHUNK, FIRST_CHUNK + 8))
    for r in posts:
        assert r["digest_headers"] == ["Content-MD5", "Digest"]
        assert r["content_type"] == "application/octet-stream"
    assert sorted(r["content_length"] for r in posts) == sorted([128 * KIB] * 7 + [1_000_003 - 7 * 128 * KIB])
    assert next(r["method"] for r in log) == "PUT" and log[-1]["path"].endswith("/finish")
    assert seen[-1].bytes_sent == 1_000_003 and seen[-1].chunks_sent == 8


def test_single_chunk_and_overwrite_replace_the_item(spotfire_emulator, hook, make_sbdf):
    first = make_sbdf(5_000, name="a.sbdf", seed=1)
    second = make_sbdf(7_000, name="b.sbdf", seed=2)
    hook.upload_sbdf_file(first, f"{REPORTS}/replace-me")
    result = hook.upload_sbdf_file(second, f"{REPORTS}/replace-me", overwrite=True)

    assert result.chunks == 1
    assert item_bytes(spotfire_emulator, f"{REPORTS}/replace-me") == second.read_bytes()
    assert len(items_at(spotfire_emulator, f"{REPORTS}/replace-me")) == 1


def test_a_real_sbdf_file_from_a_dataframe_round_trips(spotfire_emulator, hook, tmp_path):
    from airflow_provider_spotfire.sbdf import read_sbdf, write_sbdf

    df = pd.DataFrame({"region": ["north", "south"], "amount": [1.5, 2.25], "units": [3, 4]})
    written = write_sbdf(df, tmp_path / "real.sbdf")
    hook.upload_sbdf_file(written.path, "/Airflow/real")

    back_path = tmp_path / "back.sbdf"
    back_path.write_bytes(item_bytes(spotfire_emulator, "/Airflow/real"))
    back = read_sbdf(back_path)
    assert back["region"].tolist() == ["north", "south"]
    assert back["amount"].tolist() == [1.5, 2.25]


def test_job_calls_follow_the_links_the_server_returns(spotfire_emulator, hook, make_sbdf):
    spotfire_emulator.set_config(extra_response_fields=True)  # unknown fields must not bother the parser
    job = hook.create_upload_job(f"{REPORTS}/links", number_of_bytes=10, number_of_chunks=1)
    assert job.links["getStatusLinkRel"].endswith(job.job_id)
    assert job.raw["serverVersion"]  # kept, not rejected

    hook.upload_chunk(job, FIRST_CHUNK, make_sbdf(10).read_bytes())
    status = hook.get_upload_status(job)
    assert status.uploaded_chunks == (FIRST_CHUNK,) and status.state == "open"
    done = hook.finish_upload_job(status)
    assert done.state == "finished"
    paths = {r["path"] for r in upload_requests(spotfire_emulator)[1:]}
    assert paths == {job.links["uploadLinkBaseRel"], job.links["finishLinkRel"]}


def test_links_resolution_rules(hook):
    cfg = hook.config
    job = UploadJob.from_json(
        {
            "DATA": {
                "getStatusLinkAbs": f"{cfg.base_url}/spotfire/api/rest/library/v1/upload/J1",
                "cancelLinkAbs": "https://elsewhere.example.com/spotfire/api/rest/library/v1/upload/J1",
                "uploadLinkBaseRel": "/spotfire/api/rest/library/v1/upload/J1?chunk=",
                "uploadedchunks": [2, 1],
                "somethingNew": {"x": 1},
            }
        }
    )
    assert job.job_id == "J1" and job.uploaded_chunks == (1, 2)
    assert job.link("status", cfg) == f"{cfg.base_url}/spotfire/api/rest/library/v1/upload/J1"
    assert job.link("cancel", cfg) == "rest/library/v1/upload/J1"  # foreign origin: documented path
    assert job.link("finish", cfg) == "rest/library/v1/upload/J1/finish"
    chunk = build_upload_chunk(job, cfg, 3, b"xyz")
    assert chunk.path == "/spotfire/api/rest/library/v1/upload/J1"
    assert chunk.params == {"chunk": "3"}


# ---- digests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["Content-MD5", "Digest"])
def test_a_wrong_digest_is_rejected_and_nothing_is_stored(spotfire_emulator, hook, header):
    data = b"\xdf\x5b\x01" + b"x" * 100
    job = hook.create_upload_job(f"{REPORTS}/digest", number_of_bytes=len(data), number_of_chunks=1)
    md5, digest = chunk_digests(b"other bytes")
    wrong = {"content_md5": md5} if header == "Content-MD5" else {"digest": digest}
    with pytest.raises(SpotfireBadRequestError) as info:
        hook.call(build_upload_chunk(job, hook.config, FIRST_CHUNK, data, **wrong))
    assert info.value.code == "bad_digest"
    assert hook.get_upload_status(job).uploaded_chunks == ()
    hook.cancel_upload_job(job)
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/digest")


# ---- retries and resume ----------------------------------------------------------------------------
def test_a_dropped_chunk_is_retried(spotfire_emulator, hook, make_sbdf):
    path = make_sbdf(200_000)
    spotfire_emulator.inject_faults("drop_before", "drop_after", path_prefix=JOB_PATHS, method="POST")
    hook.upload_sbdf_file(path, f"{REPORTS}/dropped", chunk_size=64 * KIB, parallelism=1)

    assert item_bytes(spotfire_emulator, f"{REPORTS}/dropped") == path.read_bytes()
    log = upload_requests(spotfire_emulator)
    assert [r["fault"] for r in log if r["fault"]] == ["drop_before", "drop_after"]
    numbers = [chunk_number(r) for r in chunk_posts(log)]
    assert numbers[:3] == [FIRST_CHUNK] * 3  # the same chunk number again: idempotent by number


def test_resume_sends_only_the_chunks_the_server_lacks(spotfire_conn_id, spotfire_emulator, make_sbdf):
    """With no transport retries, a failed chunk is re-sent from memory only if the status lacks it."""
    hook = SpotfireHook(spotfire_conn_id, retry_policy=NO_RETRIES)
    path = make_sbdf(6 * 64 * KIB)
    # First chunk: its answer is lost after the server stored it. Second: refused (503).
    spotfire_emulator.inject_faults("drop_after", "503", path_prefix=JOB_PATHS, method="POST")
    result = hook.upload_sbdf_file(path, f"{REPORTS}/resumed", chunk_size=64 * KIB, parallelism=1)

    assert item_bytes(spotfire_emulator, f"{REPORTS}/resumed") == path.read_bytes()
    assert result.sha256 == sha256_file(path)
    log = upload_requests(spotfire_emulator)
    posts = [chunk_number(r) for r in chunk_posts(log)]
    # chunk 1 (stored, answer lost) is never sent again; chunk 2 (refused) is sent twice
    assert posts.count(FIRST_CHUNK) == 1
    assert posts.count(FIRST_CHUNK + 1) == 2
    # recovered through the status: chunk 1 (confirmed held), chunk 2 (re-sent); the others never failed
    assert result.resumed_chunks == 2
    first_resend = max(
        i for i, r in enumerate(log) if r in chunk_posts(log) and chunk_number(r) == FIRST_CHUNK + 1
    )
    assert any(r["method"] == "GET" for r in log[:first_resend])  # the status came first
    hook.close()


def test_a_lost_finish_is_not_an_error(spotfire_emulator, hook, make_sbdf):
    path = make_sbdf(10_000)
    job_ids: list[str] = []

    def after_create(job: UploadJob) -> None:
        job_ids.append(job.job_id)
        spotfire_emulator.inject_faults("drop_after", path_prefix=f"{UPLOAD_PATH}/{job.job_id}/finish")

    result = hook.upload_sbdf_file(path, f"{REPORTS}/finish-drop", on_job_created=after_create)
    log = upload_requests(spotfire_emulator)
    finishes = [r for r in log if r["path"].endswith("/finish")]
    assert [r["fault"] for r in finishes] == ["drop_after"]  # sent once, answer lost, not repeated
    assert log[-1]["method"] == "GET"  # confirmed by the status
    assert result.finished_at and result.job_id == job_ids[0]
    assert item_bytes(spotfire_emulator, f"{REPORTS}/finish-drop") == path.read_bytes()


def test_create_is_retried_when_refused(spotfire_emulator, hook, make_sbdf):
    spotfire_emulator.set_config(retry_after=0)
    spotfire_emulator.inject_faults("429", "503", path_prefix=UPLOAD_PATH, method="PUT")
    hook.upload_sbdf_file(make_sbdf(1000), f"{REPORTS}/refused-first")
    puts = [r for r in upload_requests(spotfire_emulator) if r["method"] == "PUT"]
    assert [r["status"] for r in puts] == [429, 503, 201]


def test_create_is_not_repeated_once_the_server_may_have_acted(spotfire_emulator, hook, make_sbdf):
    """A lost create answer: the job id is unknown, so no retry (it could open a second job)."""
    spotfire_emulator.inject_faults("drop_after", path_prefix=UPLOAD_PATH, method="PUT")
    with pytest.raises(SpotfireTransportError, match="may have opened a job"):
        hook.upload_sbdf_file(make_sbdf(1000), f"{REPORTS}/lost-create")
    puts = [r for r in upload_requests(spotfire_emulator) if r["method"] == "PUT"]
    assert len(puts) == 1
    # Honest about the cost: the server did open one job, which holds no item.
    assert len(upload_jobs(spotfire_emulator, "open")) == 1
    assert items_at(spotfire_emulator, f"{REPORTS}/lost-create") == []


# ---- cancel on failure and on abort ------------------------------------------------------------------
def test_a_failure_after_create_cancels_the_job(spotfire_emulator, hook, make_sbdf):
    def boom(progress: Any) -> None:
        raise RuntimeError("progress sink broke")

    with pytest.raises(RuntimeError, match="progress sink broke"):
        hook.upload_sbdf_file(make_sbdf(300_000), f"{REPORTS}/boom", chunk_size=64 * KIB, progress=boom)
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "cancelled" and job["cancelledAt"]
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/boom")


def test_abort_from_another_thread_cancels_the_job(spotfire_emulator, hook, make_sbdf):
    spotfire_emulator.set_config(latency_ms=50)
    created = threading.Event()
    upload = ChunkedUpload.for_file(
        hook,
        make_sbdf(400_000),
        f"{REPORTS}/killed",
        UploadOptions(chunk_size=16 * KIB, parallelism=2),
        on_job_created=lambda job: created.set(),
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upload.run()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    assert created.wait(10)
    upload.abort()
    t.join(20)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], UploadAborted)
    (job,) = upload_jobs(spotfire_emulator)
    assert job["status"] == "cancelled"
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/killed")


def test_a_permanent_chunk_error_cancels_the_job(spotfire_emulator, hook, make_sbdf):
    """The folder disappears mid-upload: finishing fails with one clear error, no item, no open job."""
    path = make_sbdf(50_000)

    def remove_folder(job: UploadJob) -> None:
        spotfire_emulator.http().request(
            "DELETE", "/_emulator/library/folders", params={"path": "/Airflow/Temp"}
        )

    spotfire_emulator.http().post(
        "/_emulator/library/folders", json={"path": "/Airflow/Temp"}
    ).raise_for_status()
    with pytest.raises(SpotfireJobError, match="refused to finish") as info:
        hook.upload_sbdf_file(path, "/Airflow/Temp/gone", on_job_created=remove_folder)
    assert "/Airflow/Temp" in str(info.value)
    assert upload_jobs(spotfire_emulator, "open") == []
    assert items_at(spotfire_emulator, "/Airflow/Temp/gone") == []


# ---- bad input: one clear error, no job opened --------------------------------------------------------
@pytest.mark.parametrize(
    ("library_path", "match"),
    [
        ("", "library_path is empty"),
        ("   ", "library_path is empty"),
        ("Airflow/Reports/x", "not absolute"),
        (f"{REPORTS}/", "no title"),
        ("/Airflow//x", "empty folder name"),
        ("/Airflow/ /x", "empty folder name"),
        ("/Airflow/../x", "relative parts"),
        ("/Airflow/a\tb", "control character"),
    ],
)
def test_bad_library_paths_fail_before_any_request(spotfire_emulator, hook, make_sbdf, library_path, match):
    with pytest.raises(SpotfireConfigurationError, match=match) as info:
        hook.upload_sbdf_file(make_sbdf(100), library_path)
    assert "/Airflow/Reports/sales" in str(info.value)  # the message shows a valid example
    assert upload_requests(spotfire_emulator) == []


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"PK\x03\x04 a zip file", "not an SBDF file"), (b"", "empty"), (None, "does not exist")],
)
def test_files_that_are_not_sbdf_fail_before_any_request(spotfire_emulator, hook, tmp_path, content, match):
    path = tmp_path / "data.sbdf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpotfireDataError, match=match):
        hook.upload_sbdf_file(path, f"{REPORTS}/x")
    assert upload_requests(spotfire_emulator) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"parallelism": 0}, "parallelism"),
        ({"parallelism": 99}, "parallelism"),
        ({"keywords": [1, 2]}, "keywords must be strings"),
        ({"description": 5}, "description must be a string"),
        ({"poll_interval": 0}, "poll_interval must be more than zero seconds"),  # no longer dropped
        ({"finish_timeout": "soon"}, "finish_timeout must be a number of seconds"),  # no longer dropped
        ({"chunksize": 10}, r"Unknown upload option\(s\) chunksize; the options are chunk_size, "),
    ],
)
def test_bad_options_fail_before_any_request(spotfire_emulator, hook, make_sbdf, kwargs, match):
    with pytest.raises(SpotfireConfigurationError, match=match):
        hook.upload_sbdf_file(make_sbdf(100), f"{REPORTS}/x", **kwargs)
    assert upload_requests(spotfire_emulator) == []


def test_missing_parent_folder_is_named(spotfire_emulator, hook, make_sbdf):
    with pytest.raises(SpotfireNotFoundError) as info:
        hook.upload_sbdf_file(make_sbdf(100), "/Airflow/Nope/Deeper/sales")
    message = str(info.value)
    assert "'/Airflow/Nope/Deeper' does not exist" in message and "Create the folder" in message
    assert upload_jobs(spotfire_emulator) == []
    assert_nothing_left(spotfire_emulator, "/Airflow/Nope/Deeper/sales")


def test_existing_item_without_overwrite(spotfire_emulator, hook, make_sbdf):
    hook.upload_sbdf_file(make_sbdf(100, seed=1), f"{REPORTS}/exists")
    before = item_bytes(spotfire_emulator, f"{REPORTS}/exists")
    with pytest.raises(SpotfireConflictError, match=r"already exists\. Pass overwrite=True"):
        hook.upload_sbdf_file(make_sbdf(200, name="other.sbdf", seed=2), f"{REPORTS}/exists")
    assert upload_jobs(spotfire_emulator, "open") == []
    assert item_bytes(spotfire_emulator, f"{REPORTS}/exists") == before


def test_no_write_permission_on_the_folder(spotfire_emulator, monkeypatch, make_sbdf):
    monkeypatch.setenv("AIRFLOW_CONN_SPOTFIRE_LIBRARY", spotfire_emulator.connection_json("library-only"))
    hook = SpotfireHook("spotfire_library")
    with pytest.raises(SpotfirePermissionError) as info:
        hook.upload_sbdf_file(make_sbdf(100), "/Restricted/secret")
    assert "'library-only' may not write to library folder '/Restricted'" in str(info.value)
    assert_nothing_left(spotfire_emulator, "/Restricted/secret")


def test_over_the_size_limit(spotfire_emulator, hook, make_sbdf):
    spotfire_emulator.set_config(max_upload_bytes=1000)
    with pytest.raises(
        SpotfireLimitExceededError, match=r"Uploading 5000 bytes .* exceeds the server's maximum"
    ):
        hook.upload_sbdf_file(make_sbdf(5000), f"{REPORTS}/big")
    assert upload_jobs(spotfire_emulator) == []
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/big")


def test_too_many_concurrent_jobs(spotfire_emulator, hook, make_sbdf):
    spotfire_emulator.set_config(max_jobs_per_client=1)
    other = hook.create_upload_job(f"{REPORTS}/holding-the-slot")
    with pytest.raises(SpotfireLimitExceededError, match="too many upload jobs are open") as info:
        hook.upload_sbdf_file(make_sbdf(100), f"{REPORTS}/second")
    assert info.value.status_code == 429
    assert [j["jobId"] for j in upload_jobs(spotfire_emulator, "open")] == [other.job_id]
    assert items_at(spotfire_emulator, f"{REPORTS}/second") == []
    hook.cancel_upload_job(other)


def test_cancel_is_idempotent_and_unknown_jobs_are_typed(spotfire_emulator, hook):
    job = hook.create_upload_job(f"{REPORTS}/to-cancel")
    assert hook.cancel_upload_job(job).state == "cancelled"
    assert hook.cancel_upload_job(job).state == "cancelled"
    with pytest.raises(SpotfireNotFoundError):
        hook.get_upload_status("00000000-0000-0000-0000-000000000000")
    assert upload_jobs(spotfire_emulator, "open") == []


def test_the_file_changing_size_during_upload_is_caught(spotfire_emulator, hook, make_sbdf):
    path: Path = make_sbdf(100_000)

    def grow(job: UploadJob) -> None:
        with path.open("ab") as fh:
            fh.write(b"more")

    with pytest.raises(Exception, match="changed size during the upload"):
        hook.upload_sbdf_file(path, f"{REPORTS}/growing", chunk_size=32 * KIB, on_job_created=grow)
    assert_nothing_left(spotfire_emulator, f"{REPORTS}/growing")


def test_retry_policy_is_honoured_per_chunk(spotfire_conn_id, spotfire_emulator, make_sbdf):
    spotfire_emulator.set_config(retry_after=0)
    hook = SpotfireHook(spotfire_conn_id, retry_policy=RetryPolicy(max_attempts=3, initial_backoff=0.01))
    spotfire_emulator.inject_faults("503", "503", path_prefix=JOB_PATHS, method="POST")
    result = hook.upload_sbdf_file(make_sbdf(1000), f"{REPORTS}/retried")
    assert result.resumed_chunks == 0  # the transport's retries were enough
    statuses = [r["status"] for r in chunk_posts(upload_requests(spotfire_emulator))]
    assert statuses == [503, 503, 200]
    hook.close()


def test_options_object_and_keywords_combine(spotfire_emulator, hook, make_sbdf):
    """One UploadOptions object travels to the engine; keywords override its fields."""
    base = UploadOptions(description="from the object", keywords="a, b", chunk_size=64 * KIB, parallelism=1)
    path = make_sbdf(200_000)
    result = hook.upload_sbdf_file(path, f"{REPORTS}/opts", options=base, keywords=["c"], finish_timeout=5)
    assert result.chunks == 4  # chunk_size of the object
    (item,) = items_at(spotfire_emulator, f"{REPORTS}/opts")
    assert item["description"] == "from the object" and item["keywords"] == ["c"]
    assert base.keywords == ("a", "b")  # frozen: the caller's object is unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.chunk_size = 1  # type: ignore[misc]
