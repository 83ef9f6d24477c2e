"""Refresh-token reuse detection (RFC 9700 §4.14.2): a replayed rotated refresh token revokes the grant."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_spotfire.emulator.__main__ import build_parser, config_from_args
from airflow_provider_spotfire.emulator.config import EmulatorConfig

from .conftest import LICENSES, TOKEN_PATH, web_login

CREDS = ("web-client", "web-client-secret")


def refresh(http: httpx.Client, token: str) -> httpx.Response:
    return http.post(TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": token}, auth=CREDS)


def stats(http: httpx.Client) -> dict:
    resp = http.get("/_emulator/oauth/stats")
    assert resp.status_code == 200
    return resp.json()


def test_reuse_revokes_every_token_of_the_grant(emu, http, api):
    assert http.patch("/_emulator/config", json={"refresh_token_reuse_detection": True}).status_code == 200
    login = web_login(http)
    other_login = web_login(http)  # a second, unrelated grant of the same client
    r1 = refresh(http, login["refresh_token"]).json()
    r2 = refresh(http, r1["refresh_token"]).json()
    descendants = [login["access_token"], r1["access_token"], r2["access_token"]]
    assert api(token=r2["access_token"]).get(LICENSES).status_code == 200

    replay = refresh(http, login["refresh_token"])  # the first refresh token was rotated already

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "reuse detected" in replay.json()["error_description"]
    for access in descendants:
        resp = api(token=access).get(LICENSES)
        assert resp.status_code == 401
        assert "revoked" in resp.json()["error"]["description"]
    # the newest refresh token of the family is dead too
    assert refresh(http, r2["refresh_token"]).json()["error"] == "invalid_grant"
    # the other grant is untouched
    assert api(token=other_login["access_token"]).get(LICENSES).status_code == 200
    assert refresh(http, other_login["refresh_token"]).status_code == 200
    s = stats(http)
    assert s["refresh_requests"] == 5
    assert s["reuse_detected"] == 1
    assert s["grants_revoked"] == 1
    assert s["refresh_token_reuse_detection"] is True
    counters = emu.inspect()["counters"]
    assert (counters["reuse_detected"], counters["grants_revoked"]) == (1, 1)
    assert emu.oauth_stats() == s


def test_second_replay_counts_reuse_but_no_new_grant(http):
    http.patch("/_emulator/config", json={"refresh_token_reuse_detection": True})
    login = web_login(http)
    refresh(http, login["refresh_token"])
    assert refresh(http, login["refresh_token"]).status_code == 400
    assert refresh(http, login["refresh_token"]).status_code == 400
    s = stats(http)
    assert (s["refresh_requests"], s["reuse_detected"], s["grants_revoked"]) == (3, 2, 1)


def test_without_detection_a_replay_only_fails_itself(http, api):
    login = web_login(http)
    r1 = refresh(http, login["refresh_token"]).json()
    replay = refresh(http, login["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert "reuse" not in replay.json()["error_description"]
    assert api(token=r1["access_token"]).get(LICENSES).status_code == 200
    assert refresh(http, r1["refresh_token"]).status_code == 200
    s = stats(http)
    assert (s["refresh_requests"], s["reuse_detected"], s["grants_revoked"]) == (3, 0, 0)


def test_detection_needs_rotation(http, api):
    http.patch(
        "/_emulator/config", json={"refresh_token_reuse_detection": True, "rotate_refresh_tokens": False}
    )
    login = web_login(http)
    for _ in range(3):
        resp = refresh(http, login["refresh_token"])
        assert resp.status_code == 200 and resp.json()["refresh_token"] == login["refresh_token"]
    assert api(token=login["access_token"]).get(LICENSES).status_code == 200
    assert stats(http)["reuse_detected"] == 0


def test_revoked_not_rotated_token_is_no_reuse(http):
    """A refresh token revoked through RFC 7009 is invalid, but presenting it is not a reuse."""
    http.patch("/_emulator/config", json={"refresh_token_reuse_detection": True})
    login = web_login(http)
    assert http.post("/spotfire/oauth2/revoke", data={"token": login["refresh_token"]}, auth=CREDS).is_success
    assert refresh(http, login["refresh_token"]).json()["error"] == "invalid_grant"
    s = stats(http)
    assert (s["reuse_detected"], s["grants_revoked"]) == (0, 1)


def test_reset_clears_the_counters(emu, http):
    http.patch("/_emulator/config", json={"refresh_token_reuse_detection": True})
    login = web_login(http)
    refresh(http, login["refresh_token"])
    refresh(http, login["refresh_token"])
    emu.reset()
    s = stats(http)
    assert (s["refresh_requests"], s["reuse_detected"], s["grants_revoked"]) == (0, 0, 0)
    assert s["refresh_token_reuse_detection"] is False


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], False), (["--refresh-token-reuse-detection"], True)],
)
def test_cli_flag(argv, expected):
    assert config_from_args(build_parser().parse_args(argv)).refresh_token_reuse_detection is expected


def test_json_file_and_code(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text('{"refresh_token_reuse_detection": true}')
    assert EmulatorConfig.from_json_file(path).refresh_token_reuse_detection is True
    assert EmulatorConfig(refresh_token_reuse_detection=True).refresh_token_reuse_detection is True
    assert EmulatorConfig().refresh_token_reuse_detection is False
