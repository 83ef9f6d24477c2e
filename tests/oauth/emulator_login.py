"""Get a refresh token from the emulator the way a user's browser would (auto-approved sign-in)."""

from __future__ import annotations

from typing import Any

import httpx

from airflow_provider_spotfire.api import scopes as S


def refresh_token_for_web_client(server: Any) -> str:
    """Play user + browser through the authorization endpoint (auto-approved) to get a refresh token."""
    redirect = "https://airflow.example.com/spotfire/callback"
    client = next(
        c
        for c in httpx.get(f"{server.url}/_emulator/clients", timeout=10).json()
        if c["client_id"] == "web-client"
    )
    redirect = (client.get("redirect_uris") or [redirect])[0]
    r = httpx.get(
        f"{server.url}/spotfire/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": "web-client",
            "redirect_uri": redirect,
            "scope": f"{S.LIBRARY_UPLOAD} {S.LICENSES_READ} offline",
            "state": "s1",
        },
    )
    assert r.status_code == 302, r.text
    code = httpx.URL(r.headers["location"]).params["code"]
    t = httpx.post(
        f"{server.url}/spotfire/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=("web-client", "web-client-secret"),
    )
    t.raise_for_status()
    return t.json()["refresh_token"]
