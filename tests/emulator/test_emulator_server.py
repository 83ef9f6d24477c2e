"""EmulatorServer, CLI, configuration, TLS, inspection and the pytest fixtures."""

from __future__ import annotations

import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from airflow_provider_spotfire.emulator.__main__ import build_parser, config_from_args
from airflow_provider_spotfire.emulator.config import EmulatorConfig
from airflow_provider_spotfire.emulator.server import EmulatorServer

from .conftest import LICENSES, TOKEN_PATH, UPLOAD, sbdf


def test_cli_starts_serves_and_stops_on_sigterm(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "airflow_provider_spotfire.emulator",
        "--port",
        "0",
        "--token-lifetime",
        "77",
        "--fault-503-rate",
        "0",
        "--as-run-seconds",
        "0.1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    out: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [out.put(line.rstrip("\n")) for line in proc.stdout], daemon=True
    )  # type: ignore[union-attr]
    reader.start()
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("export AIRFLOW_CONN_SPOTFIRE_DEFAULT=") for line in lines):
            assert time.monotonic() < deadline, lines
            try:
                lines.append(out.get(timeout=0.5))
            except queue.Empty:
                assert proc.poll() is None, lines
        url = next(line.split()[-1] for line in lines if line.startswith("Listening on"))
        assert any("airflow" in line and "airflow-secret" in line for line in lines)
        export = next(line for line in lines if line.startswith("export "))
        conn = json.loads(export.split("=", 1)[1].strip("'"))
        assert conn == {
            "conn_type": "spotfire",
            "host": url,
            "login": "airflow",
            "password": "airflow-secret",
        }
        resp = httpx.post(
            url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("airflow", "airflow-secret")
        )
        assert resp.json()["expires_in"] == 77
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_config_file_and_flags(tmp_path):
    cfg_file = tmp_path / "emu.json"
    cfg_file.write_text(json.dumps({"token_lifetime": 50, "as_queue_seconds": 2, "rate_429": 0.1}))
    args = build_parser().parse_args(
        ["--config", str(cfg_file), "--token-lifetime", "99", "--drop-rate", "0.5"]
    )
    cfg = config_from_args(args)
    assert (cfg.token_lifetime, cfg.as_queue_seconds, cfg.rate_429, cfg.drop_rate) == (99, 2, 0.1, 0.5)
    cfg_file.write_text(json.dumps({"no_such_knob": 1}))
    with pytest.raises(ValueError):
        EmulatorConfig.from_json_file(cfg_file)
    with pytest.raises(ValueError):
        EmulatorConfig().patched(rate_503=2)


def test_config_patch_via_http_and_reset(emu, http):
    resp = http.patch("/_emulator/config", json={"token_lifetime": 5, "as_field_casing": "camel"})
    assert resp.status_code == 200 and resp.json()["token_lifetime"] == 5
    assert http.patch("/_emulator/config", json={"token_lifetime": -1}).status_code == 400
    assert http.patch("/_emulator/config", json={"bogus": 1}).status_code == 400
    assert emu.config.token_lifetime == 5
    http.post("/_emulator/library/folders", json={"path": "/Scratch"})
    emu.reset()
    assert emu.config.token_lifetime == 3600 and emu.config.as_field_casing == "pascal"
    assert "/Scratch" not in [f["path"] for f in emu.inspect()["library"]["folders"]]


def test_inspection_and_request_log_never_leak_tokens(emu, airflow, http):
    token = airflow.headers["authorization"].split()[1]
    airflow.get(LICENSES, params={"x": "1"})
    state = emu.inspect()
    for key in ("library", "upload_jobs", "as_jobs", "licenses", "counters", "clients", "config"):
        assert key in state
    assert {"path", "id", "size", "sha256"} <= set(state["library"]["items"][0])
    log = emu.requests_log()
    entry = log[-1]
    assert entry["path"] == LICENSES and entry["query"] == "x=1" and entry["status"] == 200
    assert entry["client_id"] == "airflow" and "api.licenses.read" in entry["scopes"]
    assert {"time", "method", "content_length", "digest_headers"} <= set(entry)
    dumped = json.dumps(log) + json.dumps(state)
    assert token not in dumped and "airflow-secret" not in dumped
    assert not any(e["path"].startswith("/_emulator") for e in log)


def test_connection_helpers_and_fixture(spotfire_conn_id, spotfire_emulator):
    assert spotfire_conn_id == "spotfire_default"
    conn = json.loads(os.environ["AIRFLOW_CONN_SPOTFIRE_DEFAULT"])
    assert conn == {
        "conn_type": "spotfire",
        "host": spotfire_emulator.url,
        "login": "airflow",
        "password": "airflow-secret",
    }
    uri = spotfire_emulator.connection_uri("library-only")
    rest = uri.removeprefix("spotfire://")
    parts = urlsplit(rest)
    assert (
        parts.scheme == "http"
        and parts.username == "library-only"
        and parts.password == "library-only-secret"
    )
    assert "http://" + unquote(parts.hostname or "") == spotfire_emulator.url
    extra = json.loads(spotfire_emulator.connection_json("airflow", extra={"timeout": 5}))
    assert extra["extra"] == {"timeout": 5}


def test_tls_server_with_self_signed_certificate():
    with EmulatorServer(tls=True) as server:
        assert server.url.startswith("https://127.0.0.1:")
        meta = "/spotfire/.well-known/oauth-authorization-server"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(server.url + meta)
        ctx = ssl.create_default_context(cafile=server.cert_path)
        resp = httpx.get(server.url + meta, verify=ctx)
        assert resp.json()["issuer"] == f"{server.url}/spotfire"
        assert server.inspect()["counters"]["api_requests"] == 0


def test_independent_servers_and_upload_memory(tmp_path):
    """A second emulator has its own state; a 24 MiB upload is streamed to disk, not buffered in memory."""
    cfg = EmulatorConfig(data_dir=str(tmp_path))
    content = sbdf(24 * 1024 * 1024, seed=3)
    with EmulatorServer(cfg) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        tok = http.post(
            TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("airflow", "airflow-secret")
        )
        http.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"
        job = http.put(
            UPLOAD,
            json={"data": {"item": {"title": "mem", "parentPath": "/Airflow", "type": "spotfire.sbdf"}}},
        ).json()["data"]

        def body():
            for i in range(0, len(content), 512 * 1024):
                yield content[i : i + 512 * 1024]

        tracemalloc.start()
        try:
            resp = http.post(
                f"{job['uploadLinkBaseRel']}?chunk=0&finish=true",
                content=body(),
                headers={"Content-Length": str(len(content))},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert resp.status_code == 200, resp.text
        assert peak < 12 * 1024 * 1024, peak
        item = next(i for i in server.inspect()["library"]["items"] if i["path"] == "/Airflow/mem")
        assert server.item_content(item["id"]) == content
        assert str(tmp_path) in server.state.base_dir
        base_dir = server.state.base_dir
    assert not os.path.exists(base_dir)  # files are removed on stop


def test_public_url_and_request_log_filters(emu, http, airflow):
    emu.set_config(public_url="https://spotfire.example.com/")
    meta = http.get("/spotfire/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == "https://spotfire.example.com/spotfire"
    job = airflow.put(
        UPLOAD, json={"data": {"item": {"title": "x", "parentPath": "/Airflow", "type": "spotfire.sbdf"}}}
    ).json()["data"]
    assert job["finishLinkAbs"].startswith(
        "https://spotfire.example.com/spotfire/api/rest/library/v1/upload/"
    )
    first = emu.requests_log()[-1]["seq"]
    airflow.get(LICENSES)
    assert [e["path"] for e in http.get("/_emulator/requests", params={"since": first}).json()] == [LICENSES]
    assert len(emu.requests_log(limit=1)) == 1
    assert http.get("/_emulator/requests", params={"limit": "x"}).status_code == 400


def test_frozen_clock(emu, http):
    emu.freeze_clock()
    first = http.get("/_emulator/state").json()["now"]
    time.sleep(0.01)
    assert http.get("/_emulator/state").json()["now"] == first
    emu.advance_clock(10)
    assert http.get("/_emulator/state").json()["now"] > first
    emu.freeze_clock(False)
    assert emu.inspect()["clock_frozen"] is False
