"""Library upload API v1 of the emulator."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time

import httpx
import pytest

from airflow_provider_spotfire.emulator import seed

from .conftest import AS_JOB, TOKEN_PATH, UPLOAD, b64, md5_b64, sbdf

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def create(
    client: httpx.Client, title: str = "data", parent: str = "/Airflow/Reports", **data
) -> httpx.Response:
    item = {"title": title, "parentPath": parent, "type": data.pop("type", seed.TYPE_SBDF)}
    item.update(data.pop("item", {}))
    return client.put(UPLOAD, json={"data": {"item": item, **data}})


def new_job(client: httpx.Client, **kwargs) -> dict:
    resp = create(client, **kwargs)
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def put_chunk(
    client: httpx.Client, job: dict, n: int, body: bytes, finish: bool = False, **headers
) -> httpx.Response:
    url = f"{job['uploadLinkBaseRel']}?chunk={n}" + ("&finish=true" if finish else "")
    return client.post(url, content=body, headers=headers)


def item_by_path(emu, path: str) -> dict | None:
    return next((i for i in emu.inspect()["library"]["items"] if i["path"] == path), None)


def test_upload_happy_path_byte_exact_with_digests(emu, airflow):
    content = sbdf(300_000, seed=1)
    parts = [content[:100_000], content[100_000:200_000], content[200_000:]]
    job = new_job(
        airflow,
        title="Sales 2024",
        numberOfBytes=len(content),
        numberOfChunks=3,
        item={"description": "quarterly", "keywords": ["sales", "q1"]},
    )
    job_id = job["getStatusLinkRel"].rsplit("/", 1)[1]
    assert job["getStatusLinkAbs"] == emu.url + job["getStatusLinkRel"]
    assert job["getStatusLinkRel"] == f"/spotfire/api/rest/library/v1/upload/{job_id}"
    assert job["finishLinkRel"].endswith(f"/{job_id}/finish")
    assert job["cancelLinkAbs"] == emu.url + job["cancelLinkRel"]
    assert job["uploadLinkBaseAbs"] == emu.url + job["uploadLinkBaseRel"]
    assert job["uploadedChunks"] == []
    # out of order, each chunk with a different digest flavour (algorithm names are case-insensitive)
    r = put_chunk(airflow, job, 2, parts[2], **{"Content-MD5": md5_b64(parts[2])})
    assert r.status_code == 200, r.text
    r = put_chunk(airflow, job, 0, parts[0], Digest=f"sha-256={b64(hashlib.sha256(parts[0]).digest())}")
    assert r.status_code == 200, r.text
    digest = f"SHA={b64(hashlib.sha1(parts[1]).digest())}, Sha-512={b64(hashlib.sha512(parts[1]).digest())}"
    r = put_chunk(airflow, job, 1, parts[1], Digest=digest + ", UNIXsum=1234")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["uploadedChunks"] == [0, 1, 2]
    assert "finishedAt" not in r.json()["data"]
    fin = airflow.post(job["finishLinkRel"])
    assert fin.status_code == 200, fin.text
    assert ISO_Z.match(fin.json()["data"]["finishedAt"])
    status = airflow.get(job["getStatusLinkRel"]).json()["data"]
    assert status["finishedAt"] == fin.json()["data"]["finishedAt"]
    assert status["uploadedChunks"] == [0, 1, 2]
    item = item_by_path(emu, "/Airflow/Reports/Sales 2024")
    assert item["size"] == len(content)
    assert item["sha256"] == hashlib.sha256(content).hexdigest()
    assert item["description"] == "quarterly" and item["keywords"] == ["sales", "q1"]
    assert emu.item_content(item["id"]) == content
    # finishing again is idempotent
    assert airflow.post(job["finishLinkRel"]).json()["data"]["finishedAt"] == status["finishedAt"]
    state_job = next(j for j in emu.inspect()["upload_jobs"] if j["jobId"] == job_id)
    assert state_job["status"] == "finished" and state_job["bytesReceived"] == len(content)
    log = emu.requests_log(path_prefix=job["uploadLinkBaseRel"])
    assert {"Content-MD5"} in [set(e["digest_headers"]) for e in log]
    assert any(e["digest_headers"] == ["Digest"] for e in log)


def test_large_streamed_upload_with_finish_flag_and_chunk_replacement(emu, airflow):
    content = sbdf(6 * 1024 * 1024 + 123, seed=2)
    job = new_job(airflow, title="big")

    def gen(data: bytes):
        for i in range(0, len(data), 256 * 1024):
            yield data[i : i + 256 * 1024]

    half = len(content) // 2
    # first a wrong chunk 1, then replaced by the right one (idempotent by chunk number)
    assert put_chunk(airflow, job, 1, b"garbage").status_code == 200
    r = airflow.post(
        f"{job['uploadLinkBaseRel']}?chunk=0",
        content=gen(content[:half]),
        headers={"Content-Length": str(half)},
    )
    assert r.status_code == 200, r.text
    r = put_chunk(airflow, job, 1, content[half:], finish=True, **{"Content-MD5": md5_b64(content[half:])})
    assert r.status_code == 200, r.text
    assert "finishedAt" in r.json()["data"]
    item = item_by_path(emu, "/Airflow/Reports/big")
    assert emu.item_content(item["id"]) == content


def job_id_of(job: dict) -> str:
    return job["getStatusLinkRel"].rsplit("/", 1)[1]


@pytest.mark.parametrize("first", [0, 1])
def test_undeclared_sizes_assembled_in_chunk_number_order(emu, http, airflow, first):
    content = sbdf(3000, seed=first)
    parts = [content[:1000], content[1000:2000], content[2000:]]
    job = new_job(airflow, title="undeclared")  # neither numberOfBytes nor numberOfChunks
    for i in (2, 0, 1):  # out of order
        assert put_chunk(airflow, job, first + i, parts[i]).status_code == 200
    resp = airflow.post(job["finishLinkRel"])
    assert resp.status_code == 200, resp.text
    assert emu.item_content(item_by_path(emu, "/Airflow/Reports/undeclared")["id"]) == content
    row = http.get(f"/_emulator/library/jobs/{job_id_of(job)}").json()
    assert (row["numberOfBytes"], row["numberOfChunks"], row["status"]) == (None, None, "finished")
    assert row["uploadedChunks"] == [first, first + 1, first + 2]


@pytest.mark.parametrize(
    ("numbers", "declared", "missing"),
    [
        ([1, 2, 4], {}, "3"),
        ([1, 2, 4], {"numberOfChunks": 3}, "3"),  # the count matches, the numbering does not
        ([0, 3, 4, 9], {}, "1-2, 5-8"),
        ([2, 3], {}, "1"),
        ([2_000_000_000], {}, "1-1999999999"),
    ],
)
def test_finish_with_a_gap_in_chunk_numbers_is_refused(emu, http, airflow, numbers, declared, missing):
    before = emu.inspect()["library"]["items"]
    job = new_job(airflow, title="gappy", **declared)
    for n in numbers:
        assert put_chunk(airflow, job, n, sbdf(100, seed=n)).status_code == 200
    job_dir = emu.state.upload_jobs[job_id_of(job)].job_dir
    resp = airflow.post(job["finishLinkRel"])
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "precondition_failed"
    assert error["description"].endswith(f"missing chunk(s) {missing}")
    # nothing half-done: the job failed, its chunks are gone, no item appeared
    assert http.get(f"/_emulator/library/jobs/{job_id_of(job)}").json()["status"] == "failed"
    assert not os.path.exists(job_dir)
    assert emu.inspect()["library"]["items"] == before
    assert airflow.get(job["getStatusLinkRel"]).json()["error"]["code"] == "job_unknown"


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-MD5": b64(hashlib.md5(b"other").digest())},
        {"Digest": f"SHA-256={b64(hashlib.sha256(b'other').digest())}"},
        {"Digest": f"MD5={b64(hashlib.md5(b'other').digest())}"},
        {"Content-MD5": "not base64!!"},
        {"Content-MD5": hashlib.md5(b"x").hexdigest()},
    ],
)
def test_bad_digest_stores_nothing(emu, airflow, headers):
    job = new_job(airflow)
    r = put_chunk(airflow, job, 0, sbdf(100), **headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_digest"
    assert airflow.get(job["getStatusLinkRel"]).json()["data"]["uploadedChunks"] == []


def test_create_job_errors(emu, airflow, api):
    def err(resp: httpx.Response, status: int, code: str) -> str:
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["code"] == code
        return resp.json()["error"]["description"]

    err(create(airflow, title=""), 400, "invalid_request")
    err(airflow.put(UPLOAD, json={"item": {"title": "x"}}), 400, "invalid_request")
    err(
        airflow.put(UPLOAD, content=b"{nope", headers={"Content-Type": "application/json"}),
        400,
        "invalid_request",
    )
    err(create(airflow, type="spotfire.dxp"), 415, "unsupported_mediatype")
    assert "/Nowhere" in err(create(airflow, parent="/Nowhere"), 404, "not_found")
    err(create(airflow, parent="/Restricted/Finance"), 404, "not_found")  # not even visible
    err(create(airflow, parent="/Restricted"), 403, "not_authorized")
    err(create(airflow, title="Existing Data"), 409, "already_exists")
    assert create(airflow, title="Existing Data", overwriteIfExists=True).status_code == 201
    emu.set_config(max_upload_bytes=1000)
    err(create(airflow, numberOfBytes=1001), 413, "limit_exceeded")
    emu.set_config(max_upload_bytes=10**9, max_jobs_per_client=2)
    assert create(airflow, title="a").status_code == 201
    err(create(airflow, title="b"), 429, "rate_limit_exceeded")
    emu.set_config(max_jobs_per_client=10, max_jobs_per_server=2)  # 2 jobs are open
    other = api("library-only")
    err(create(other, title="c"), 429, "rate_limit_exceeded")


def test_chunk_errors(emu, airflow, api):
    job = new_job(airflow)
    r = airflow.post(job["uploadLinkBaseRel"], content=b"x")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"  # no chunk parameter
    r = airflow.post(
        f"{job['uploadLinkBaseRel']}?chunk=0", content=iter([b"\xdf\x5b", b"abc"])
    )  # chunked encoding
    assert r.status_code == 400 and "Content-Length" in r.json()["error"]["description"]
    r = airflow.post(f"{UPLOAD}/00000000-0000-0000-0000-000000000000?chunk=0", content=b"x")
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_unknown"
    # another client cannot see the job
    r = put_chunk(api("library-only"), job, 0, b"x")
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_unknown"
    emu.set_config(max_upload_bytes=150)
    assert put_chunk(airflow, job, 0, sbdf(100)).status_code == 200
    r = put_chunk(airflow, job, 1, b"y" * 60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "limit_exceeded"
    r = airflow.post(f"{job['uploadLinkBaseRel']}?chunk=1&finish=maybe", content=b"x")
    assert r.status_code == 400


def test_min_chunk_size(emu, airflow):
    emu.set_config(min_chunk_bytes=100)
    content = sbdf(250)
    # the last chunk may be small
    job = new_job(airflow, title="ok")
    assert put_chunk(airflow, job, 0, content[:120]).status_code == 200
    assert put_chunk(airflow, job, 1, content[120:240]).status_code == 200
    assert put_chunk(airflow, job, 2, content[240:], finish=True).status_code == 200
    # a small chunk that is provably not the last one is refused at once
    job = new_job(airflow, title="early")
    assert put_chunk(airflow, job, 1, content[50:]).status_code == 200
    r = put_chunk(airflow, job, 0, content[:50])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    # ... otherwise the finish fails and the job fails
    job = new_job(airflow, title="late")
    assert put_chunk(airflow, job, 0, content[:50]).status_code == 200
    assert put_chunk(airflow, job, 1, content[50:]).status_code == 200
    r = airflow.post(job["finishLinkRel"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "precondition_failed"
    assert item_by_path(emu, "/Airflow/Reports/late") is None


@pytest.mark.parametrize(
    ("declared", "message"),
    [({"numberOfChunks": 3}, "numberOfChunks"), ({"numberOfBytes": 999}, "numberOfBytes")],
)
def test_finish_count_mismatch_fails_job(emu, airflow, declared, message):
    job = new_job(airflow, title="mismatch", **declared)
    assert put_chunk(airflow, job, 0, sbdf(500)).status_code == 200
    r = airflow.post(job["finishLinkRel"])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "precondition_failed" and message in r.json()["error"]["description"]
    assert item_by_path(emu, "/Airflow/Reports/mismatch") is None
    assert airflow.get(job["getStatusLinkRel"]).status_code == 404
    assert next(j for j in emu.inspect()["upload_jobs"])["status"] == "failed"


def test_non_sbdf_content_rejected(emu, airflow):
    job = new_job(airflow, title="csv")
    assert put_chunk(airflow, job, 0, b"a,b,c\n1,2,3\n").status_code == 200
    r = airflow.post(job["finishLinkRel"])
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_mediatype"
    assert item_by_path(emu, "/Airflow/Reports/csv") is None


def test_cancel(emu, airflow):
    job = new_job(airflow, title="cancelled")
    assert put_chunk(airflow, job, 0, sbdf(100)).status_code == 200
    r = airflow.delete(job["cancelLinkRel"])
    assert r.status_code == 200
    assert ISO_Z.match(r.json()["data"]["cancelledAt"])
    assert r.json()["data"]["uploadedChunks"] == []
    assert airflow.delete(job["cancelLinkRel"]).status_code == 200  # idempotent
    status = airflow.get(job["getStatusLinkRel"]).json()["data"]
    assert "cancelledAt" in status and "finishedAt" not in status
    r = put_chunk(airflow, job, 1, b"x")
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_unknown"
    assert airflow.post(job["finishLinkRel"]).status_code == 404
    assert next(j for j in emu.inspect()["upload_jobs"])["status"] == "cancelled"
    assert item_by_path(emu, "/Airflow/Reports/cancelled") is None


def test_overwrite_keeps_item_id(emu, airflow):
    content = sbdf(777, seed=9)
    job = new_job(airflow, title="Existing Data", overwriteIfExists=True)
    assert put_chunk(airflow, job, 0, content, finish=True).status_code == 200
    item = item_by_path(emu, "/Airflow/Reports/Existing Data")
    assert item["id"] == seed.ITEM_EXISTING_SBDF
    assert item["sha256"] == hashlib.sha256(content).hexdigest()
    assert emu.item_content(seed.ITEM_EXISTING_SBDF) == content


def test_parent_folder_deleted_during_upload(emu, airflow, http):
    assert (
        http.post(
            "/_emulator/library/folders", json={"path": "/Airflow/Tmp", "write": ["airflow"]}
        ).status_code
        == 201
    )
    job = new_job(airflow, parent="/Airflow/Tmp", title="x")
    assert put_chunk(airflow, job, 0, sbdf(10)).status_code == 200
    assert http.delete("/_emulator/library/folders", params={"path": "/Airflow/Tmp"}).status_code == 200
    r = airflow.post(job["finishLinkRel"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_parallel_chunk_limit(emu, airflow):
    emu.set_config(max_parallel_chunks_per_job=1, retry_after=7)
    job = new_job(airflow, title="parallel")
    release = threading.Event()
    result: dict = {}

    def slow_body():
        yield b"\xdf\x5b"
        release.wait(10)
        yield b"rest"

    def upload():
        with httpx.Client(base_url=emu.url, headers=dict(airflow.headers), timeout=20, verify=False) as c:
            result["r"] = c.post(
                f"{job['uploadLinkBaseRel']}?chunk=0", content=slow_body(), headers={"Content-Length": "6"}
            )

    t = threading.Thread(target=upload)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while emu.state.upload_jobs[job["getStatusLinkRel"].rsplit("/", 1)[1]].in_flight == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        r = put_chunk(airflow, job, 1, b"abc")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "server_busy" and r.headers["retry-after"] == "7"
        assert airflow.post(job["finishLinkRel"]).status_code == 503  # chunks still in flight
    finally:
        release.set()
        t.join(10)
    assert result["r"].status_code == 200
    assert airflow.post(job["finishLinkRel"]).status_code == 200


@pytest.mark.parametrize(("user", "allowed"), [("alice", True), ("bob", False)])
def test_authorization_code_upload_uses_end_user_permissions(emu, http, api, user, allowed):
    emu.set_config(authorize_user=user)
    loc = http.get(
        "/spotfire/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": "web-client",
            "redirect_uri": seed.WEB_CLIENT_REDIRECT_URI,
            "scope": seed.SCOPE_LIBRARY_UPLOAD,
        },
    ).headers["location"]
    code = httpx.URL(loc).params["code"]
    tok = http.post(
        TOKEN_PATH,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": seed.WEB_CLIENT_REDIRECT_URI},
        auth=("web-client", "web-client-secret"),
    ).json()["access_token"]
    client = api(token=tok)
    r = create(client, title=f"by-{user}")
    assert r.status_code == (201 if allowed else 403), r.text


def test_library_scope_required(api):
    r = create(api("automation-only"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_authorized"
    r = api("library-only").post(f"{AS_JOB}/start-library?path=/x")
    assert r.status_code == 403


def test_extra_response_fields(emu, airflow):
    emu.set_config(extra_response_fields=True)
    job = new_job(airflow)
    assert "createdAt" in job and "serverVersion" in job


def test_item_sha256_whatever_the_chunk_order_and_resends(emu, airflow):
    """Out of order, in parallel or re-sent chunks: the item's sha256 (computed when asked) is right."""
    from concurrent.futures import ThreadPoolExecutor

    content = sbdf(400_000, seed=3)
    parts = [content[i : i + 100_000] for i in range(0, len(content), 100_000)]

    def upload(title: str, order: list[tuple[int, bytes]], parallel: bool = False) -> dict:
        job = new_job(airflow, title=title)
        send = lambda nb: put_chunk(airflow, job, nb[0], nb[1], **{"Content-MD5": md5_b64(nb[1])})  # noqa: E731
        if parallel:
            with ThreadPoolExecutor(4) as pool:
                responses = list(pool.map(send, order))
        else:
            responses = [send(nb) for nb in order]
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert airflow.post(job["finishLinkRel"]).status_code == 200
        return item_by_path(emu, f"/Airflow/Reports/{title}")

    sha = hashlib.sha256(content).hexdigest()
    in_order = list(enumerate(parts, start=1))
    assert upload("in order", in_order)["sha256"] == sha
    assert upload("parallel", in_order, parallel=True)["sha256"] == sha
    assert upload("backwards", in_order[::-1])["sha256"] == sha
    assert (
        upload("from 0 after 1", [(1, parts[1]), (0, parts[0]), (2, parts[2]), (3, parts[3])])["sha256"]
        == hashlib.sha256(parts[0] + parts[1] + parts[2] + parts[3]).hexdigest()
    )
    # a chunk re-sent with other bytes after it was hashed: the item holds (and hashes) the new ones
    other = sbdf(100_000, seed=4)[::-1]
    item = upload("re-sent", [*in_order, (2, other)])
    changed = parts[0] + other + parts[2] + parts[3]
    assert item["sha256"] == hashlib.sha256(changed).hexdigest() and emu.item_content(item["id"]) == changed


def test_item_sha256_is_computed_when_asked_and_follows_overwrites(emu, airflow):
    """No item hash during the upload or the finish; the first request for it computes and keeps it."""
    first, second = sbdf(300_000, seed=5), sbdf(200_000, seed=6)
    path = "/Airflow/Reports/lazy"

    def upload(content: bytes) -> None:
        job = new_job(airflow, title="lazy", overwriteIfExists=True)
        assert put_chunk(airflow, job, 1, content, **{"Content-MD5": md5_b64(content)}).status_code == 200
        assert airflow.post(job["finishLinkRel"]).status_code == 200

    def stored():  # the emulator's own record, not through an endpoint that would hash it
        return next(i for i in emu.state.library.items.values() if i.path == path)

    upload(first)
    assert stored().sha256 is None  # nothing hashed the item yet
    resp = emu.http().get(f"/_emulator/library/items/{stored().item_id}/content")
    assert resp.content == first and resp.headers["X-Content-SHA256"] == hashlib.sha256(first).hexdigest()
    assert stored().sha256 == hashlib.sha256(first).hexdigest()  # kept
    upload(second)  # overwrite: the old hash goes with the old bytes
    assert stored().sha256 is None
    assert item_by_path(emu, path)["sha256"] == hashlib.sha256(second).hexdigest()


def test_item_hash_read_during_an_overwrite_is_not_kept(emu):
    """A hash of content that was overwritten while it was read answers for the old bytes only."""
    library = emu.state.library
    item = library.add_item("/Airflow/Reports", "race", "spotfire.sbdf", b"old bytes")
    with emu.state.lock:
        content = library.open_content(item)
    try:
        library.add_item("/Airflow/Reports", "race", "spotfire.sbdf", b"new bytes")  # unlinks the old files
        assert library.content_sha256(content) == hashlib.sha256(b"old bytes").hexdigest()
        assert b"".join(fh.read() for fh in content.handles) == b"old bytes"  # rewound, still readable
    finally:
        content.close()
    assert item.sha256 is None  # the old bytes' hash was not kept for the new ones
    library.hash_items()
    assert item.sha256 == hashlib.sha256(b"new bytes").hexdigest()
