"""Shared helpers for the emulator tests (the emulator fixtures come from the pytest11 plugin)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from airflow_provider_spotfire.emulator import seed
from airflow_provider_spotfire.emulator.server import EmulatorServer

TOKEN_PATH = "/spotfire/oauth2/token"
UPLOAD = "/spotfire/api/rest/library/v1/upload"
AS_JOB = "/spotfire/api/rest/as/job"
LICENSES = "/spotfire/api/rest/licenses/v1"
SBDF_HEADER = b"\xdf\x5b\x01\x01\x00"

SECRETS = {
    "airflow": "airflow-secret",
    "library-only": "library-only-secret",
    "automation-only": "automation-only-secret",
    "licenses-reader": "licenses-reader-secret",
    "licenses-writer": "licenses-writer-secret",
    "post-auth": "post-auth-secret",
    "web-client": "web-client-secret",
}


def b64(data: bytes) -> str:
    """Base64 text."""
    return base64.b64encode(data).decode()


def md5_b64(data: bytes) -> str:
    """Content-MD5 header value (RFC 1864)."""
    return b64(hashlib.md5(data).digest())


def sbdf(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes starting with the SBDF magic."""
    out = bytearray(SBDF_HEADER)
    block = hashlib.sha512(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out.extend(block)
    return bytes(out[:size])


def authorize(http: httpx.Client, **params: str) -> httpx.Response:
    """GET the authorization endpoint with response_type=code."""
    return http.get("/spotfire/oauth2/auth", params={"response_type": "code", **params})


def redirect_params(resp: httpx.Response) -> tuple[str, dict[str, str]]:
    """(redirect base URL, query parameters) of a 302 answer of the authorization endpoint."""
    assert resp.status_code == 302, resp.text
    loc = resp.headers["location"]
    parts = urlsplit(loc)
    base = loc.split("?")[0]
    return base, {k: v[0] for k, v in parse_qs(parts.query).items()}


def web_login(http: httpx.Client, scope: str = " ".join(seed.ALL_SCOPES)) -> dict:
    """Authorization code login of the seeded web client (alice); returns the token response."""
    _, params = redirect_params(
        authorize(http, client_id="web-client", redirect_uri=seed.WEB_CLIENT_REDIRECT_URI, scope=scope)
    )
    resp = http.post(
        TOKEN_PATH,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": seed.WEB_CLIENT_REDIRECT_URI,
        },
        auth=("web-client", "web-client-secret"),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def emu(spotfire_emulator: EmulatorServer) -> EmulatorServer:
    """The session emulator, reset for this test."""
    return spotfire_emulator


@pytest.fixture
def http(emu: EmulatorServer) -> Iterator[httpx.Client]:
    """Unauthenticated httpx client against the emulator."""
    with httpx.Client(base_url=emu.url, timeout=20, follow_redirects=False, verify=False) as client:
        yield client


@pytest.fixture
def token_for(http: httpx.Client) -> Callable[..., str]:
    """Get a client-credentials access token for a seeded client."""

    def _token(client_id: str = "airflow", scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        if client_id == "post-auth":
            data.update(client_id=client_id, client_secret=SECRETS[client_id])
            resp = http.post(TOKEN_PATH, data=data)
        else:
            resp = http.post(TOKEN_PATH, data=data, auth=(client_id, SECRETS[client_id]))
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    return _token


@pytest.fixture
def api(emu: EmulatorServer, token_for: Callable[..., str]) -> Iterator[Callable[..., httpx.Client]]:
    """Factory of bearer-authenticated httpx clients: ``api("library-only")``."""
    made: list[httpx.Client] = []

    def _make(client_id: str = "airflow", scope: str | None = None, token: str | None = None) -> httpx.Client:
        tok = token or token_for(client_id, scope)
        client = httpx.Client(
            base_url=emu.url, headers={"Authorization": f"Bearer {tok}"}, timeout=20, verify=False
        )
        made.append(client)
        return client

    yield _make
    for c in made:
        c.close()


@pytest.fixture
def airflow(api: Callable[..., httpx.Client]) -> httpx.Client:
    """Bearer client of the seeded ``airflow`` API client (all scopes)."""
    return api("airflow")


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> None:
    """Override of the suite-wide autouse fixture: emulator tests never use the provider's token cache,
    and importing it (it pulls in Airflow) would cost seconds per session."""
