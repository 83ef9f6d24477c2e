"""The `spotfire` connection: how host, login, password and extras are read and validated."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import Connection

from airflow_provider_spotfire._connection import SpotfireConnectionConfig, is_loopback_host
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError


def conn(**kw) -> Connection:
    extra = kw.pop("extra", None)
    return Connection(
        conn_id=kw.pop("conn_id", "sf"),
        conn_type="spotfire",
        extra=json.dumps(extra) if extra else None,
        **kw,
    )


def test_minimal_client_credentials_connection():
    cfg = SpotfireConnectionConfig.from_connection(
        conn(host="https://spotfire.example.com", login="id", password="pw")
    )
    assert cfg.server_url == "https://spotfire.example.com/spotfire"
    assert cfg.api_url == "https://spotfire.example.com/spotfire/api"
    assert cfg.default_token_url == "https://spotfire.example.com/spotfire/oauth2/token"
    assert cfg.metadata_url == "https://spotfire.example.com/spotfire/.well-known/oauth-authorization-server"
    assert (cfg.grant_type, cfg.token_auth_method, cfg.verify, cfg.timeout) == (
        "client_credentials",
        "client_secret_basic",
        True,
        60.0,
    )
    assert "pw" not in repr(cfg)


def test_json_env_connection_with_only_four_fields(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPOTFIRE_JSONTEST",
        json.dumps(
            {"conn_type": "spotfire", "host": "https://sf.example.com:8443", "login": "c", "password": "s"}
        ),
    )
    from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

    cfg = SpotfireHook("spotfire_jsontest").config
    assert cfg.server_url == "https://sf.example.com:8443/spotfire"
    assert (cfg.client_id, cfg.client_secret) == ("c", "s")


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("spotfire.example.com", None, "https://spotfire.example.com"),  # bare host means https
        ("spotfire.example.com", 8443, "https://spotfire.example.com:8443"),
        ("https://spotfire.example.com:9443/", None, "https://spotfire.example.com:9443"),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
        ("http://[::1]:8080", None, "http://[::1]:8080"),
    ],
)
def test_host_forms(host, port, expected):
    cfg = SpotfireConnectionConfig.from_connection(conn(host=host, port=port, login="id", password="pw"))
    assert cfg.base_url == expected


def test_context_path_from_host_or_extra():
    a = SpotfireConnectionConfig.from_connection(conn(host="https://h/custom", login="i", password="p"))
    b = SpotfireConnectionConfig.from_connection(
        conn(host="https://h", login="i", password="p", extra={"context_path": "/"})
    )
    assert a.server_url == "https://h/custom"
    assert b.server_url == "https://h"


def test_extras_are_read_and_legacy_prefix_accepted(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = SpotfireConnectionConfig.from_connection(
        conn(
            host="https://h",
            login="web",
            password="sec",
            extra={
                "grant_type": "refresh_token",
                "extra__spotfire__refresh_token": "rt",
                "scopes": "api.licenses.read, api.rest.library.upload",
                "client_auth_method": "client_secret_post",
                "verify": str(ca),
                "timeout": "12.5",
            },
        )
    )
    assert cfg.refresh_token == "rt"
    assert cfg.scopes_override == ("api.licenses.read", "api.rest.library.upload")
    assert cfg.token_auth_method == "client_secret_post"
    assert cfg.verify == str(ca)
    assert cfg.timeout == 12.5
    assert set(cfg.secrets()) == {"sec", "rt"}


@pytest.mark.parametrize("value", ["false", False, "0", "no"])
def test_verify_can_be_switched_off_explicitly(value):
    cfg = SpotfireConnectionConfig.from_connection(
        conn(host="https://h", login="i", password="p", extra={"verify": value})
    )
    assert cfg.verify is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "", "login": "i", "password": "p"}, "has no host"),
        ({"host": "ftp://h", "login": "i", "password": "p"}, "not an http(s) URL"),
        ({"host": "https://h", "login": "", "password": "p"}, "has no login"),
        ({"host": "https://h", "login": "i", "password": None}, "has no password"),
        ({"host": "http://spotfire.corp", "login": "i", "password": "p"}, "plain http"),
        (
            {"host": "https://h", "login": "i", "password": "p", "extra": {"grant_type": "password"}},
            "grant_type",
        ),
        (
            {"host": "https://h", "login": "i", "extra": {"grant_type": "refresh_token"}},
            "airflow-spotfire login",
        ),
        (
            {"host": "https://h", "login": "i", "password": "p", "extra": {"client_auth_method": "jwt"}},
            "client_auth_method",
        ),
        ({"host": "https://h", "login": "i", "password": "p", "extra": {"timeout": "soon"}}, "timeout"),
        (
            {"host": "https://h", "login": "i", "password": "p", "extra": {"allow_insecure_http": "maybe"}},
            "true or false",
        ),
    ],
)
def test_invalid_connections_get_one_clear_error(kwargs, message):
    with pytest.raises(SpotfireConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SpotfireConnectionConfig.from_connection(conn(**kwargs))


def test_plain_http_to_remote_host_only_when_explicitly_allowed():
    cfg = SpotfireConnectionConfig.from_connection(
        conn(host="http://spotfire.corp", login="i", password="p", extra={"allow_insecure_http": True})
    )
    assert cfg.base_url == "http://spotfire.corp"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.5.5.5", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host, loopback):
    assert is_loopback_host(host) is loopback


def test_legacy_token_auth_method_extra_is_still_read():
    cfg = SpotfireConnectionConfig.from_connection(
        conn(host="https://h", login="i", password="p", extra={"token_auth_method": "client_secret_post"})
    )
    assert cfg.token_auth_method == "client_secret_post"


def test_no_connection_field_name_is_masked_by_airflow():
    """Airflow masks extras whose names contain sensitive words; only the refresh token may be one."""
    from airflow.providers.common.compat.sdk import redact

    from airflow_provider_spotfire import get_provider_info

    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    masked = {name for name in fields if redact("visible", name) != "visible"}
    assert masked == {"refresh_token"}


@pytest.mark.parametrize("extra", [{"context_path": ""}, {"context_path": "/"}])
def test_empty_context_path_means_a_server_at_the_root(extra):
    cfg = SpotfireConnectionConfig.from_connection(
        Connection(
            conn_id="sf",
            conn_type="spotfire",
            host="https://h",
            login="i",
            password="p",
            extra=json.dumps(extra),
        )
    )
    assert cfg.server_url == "https://h"
    assert cfg.default_token_url == "https://h/oauth2/token"


@pytest.mark.parametrize(
    ("host", "fixed"),
    [
        ("https//spotfire.example.com", "https://spotfire.example.com"),
        ("https:/spotfire.example.com", "https://spotfire.example.com"),
        ("HTTP:spotfire.example.com:8080", "http://spotfire.example.com:8080"),
    ],
)
def test_scheme_typos_are_refused_with_the_fixed_url(host, fixed):
    with pytest.raises(SpotfireConfigurationError, match=f"has a malformed scheme .*write it as {fixed}\\.$"):
        SpotfireConnectionConfig.from_connection(conn(host=host, login="i", password="p"))


@pytest.mark.parametrize("host", ["httpbin.example.com", "https.example.com", "http-gw.example.com:8443"])
def test_hosts_that_merely_start_with_http_are_not_typos(host):
    cfg = SpotfireConnectionConfig.from_connection(conn(host=host, login="i", password="p"))
    assert cfg.base_url == "https://" + host


def test_verify_must_be_a_file_not_a_directory(tmp_path):
    with pytest.raises(SpotfireConfigurationError, match="nor the path of an existing CA bundle file"):
        SpotfireConnectionConfig.from_connection(
            conn(host="https://h", login="i", password="p", extra={"verify": str(tmp_path)})
        )


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0", True])
def test_timeout_must_be_finite_and_positive(timeout):
    with pytest.raises(SpotfireConfigurationError, match=r"extra timeout must be .* \(default 60\)\.$"):
        SpotfireConnectionConfig.from_connection(
            conn(host="https://h", login="i", password="p", extra={"timeout": timeout})
        )


def test_legacy_prefixed_empty_context_path_keeps_the_default():
    """Airflow 2 forms saved "" for untouched fields: that is not a request for a server at the root."""
    cfg = SpotfireConnectionConfig.from_connection(
        conn(host="https://h", login="i", password="p", extra={"extra__spotfire__context_path": ""})
    )
    assert cfg.server_url == "https://h/spotfire"


def test_poll_interval_extra_is_optional_and_read_as_seconds():
    base = {"host": "https://h", "login": "i", "password": "p"}
    assert SpotfireConnectionConfig.from_connection(conn(**base)).poll_interval is None
    for raw in ("", None):
        cfg = SpotfireConnectionConfig.from_connection(conn(**base, extra={"poll_interval": raw, "x": 1}))
        assert cfg.poll_interval is None
    assert (
        SpotfireConnectionConfig.from_connection(conn(**base, extra={"poll_interval": "0.2"})).poll_interval
        == 0.2
    )
    assert (
        SpotfireConnectionConfig.from_connection(conn(**base, extra={"poll_interval": 30})).poll_interval
        == 30.0
    )
    legacy = conn(**base, extra={"extra__spotfire__poll_interval": "7"})
    assert SpotfireConnectionConfig.from_connection(legacy).poll_interval == 7.0


@pytest.mark.parametrize("raw", ["nan", "inf", "-1", "0", True, "soon", 10**9])
def test_bad_poll_interval_extra_is_one_clear_error_naming_it(raw):
    with pytest.raises(SpotfireConfigurationError) as info:
        SpotfireConnectionConfig.from_connection(
            conn(host="https://h", login="i", password="p", extra={"poll_interval": raw})
        )
    message = str(info.value)
    assert message.startswith("Spotfire connection 'sf': extra poll_interval must be"), message
    assert "leave it unset" in message and "15 s" in message
