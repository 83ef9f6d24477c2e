"""Run the emulator in a background thread (own event loop) on a free port: :class:`EmulatorServer`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx
import uvicorn

from airflow_provider_spotfire.emulator.app import create_app
from airflow_provider_spotfire.emulator.config import EmulatorConfig
from airflow_provider_spotfire.emulator.state import EmulatorState


def generate_self_signed_cert(
    directory: str, hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
) -> tuple[str, str]:
    """Write a throwaway self-signed certificate and key (PEM) into ``directory``; returns their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Spotfire Server emulator (self-signed)")])
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "emulator-cert.pem")
    key_path = os.path.join(directory, "emulator-key.pem")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


class EmulatorServer:
    """A Spotfire Server emulator served by uvicorn in a background thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``port=0`` picks a free port.
    With ``tls=True`` it serves https with a throwaway self-signed certificate (:attr:`cert_path`).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
    ) -> None:
        self.app = create_app(config)
        self.host = host
        self.tls = tls
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._tmp: str | None = None
        self.cert_path: str | None = None
        self.key_path: str | None = None
        self._http: httpx.Client | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 15.0) -> EmulatorServer:
        """Bind the port, start uvicorn in a thread and wait until it serves."""
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.set_inheritable(True)
        self._sock = sock
        self._port = sock.getsockname()[1]
        kwargs: dict[str, Any] = {}
        if self.tls:
            self._tmp = tempfile.mkdtemp(prefix="spotfire-emulator-tls-")
            self.cert_path, self.key_path = generate_self_signed_cert(
                self._tmp, (self.host, "127.0.0.1", "localhost")
            )
            kwargs.update(ssl_certfile=self.cert_path, ssl_keyfile=self.key_path)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
            **kwargs,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="spotfire-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the Spotfire emulator failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the Spotfire emulator did not start in time")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, join the thread and delete all files of this emulator."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._thread = None
        self._server = None
        self._sock = None
        self.state.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ properties
    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def state(self) -> EmulatorState:
        """Direct (in-process) access to the emulator state."""
        return self.app.state.emulator

    @property
    def config(self) -> EmulatorConfig:
        """The current configuration."""
        return self.state.config

    # ------------------------------------------------------------------ connections
    def client_secret(self, client_id: str = "airflow") -> str | None:
        """The secret of a registered API client (``None`` for public clients)."""
        with self.state.lock:
            client = self.state.principals.clients.get(client_id)
        if client is None:
            raise KeyError(f"unknown API client {client_id!r}")
        return client.client_secret

    def connection_dict(
        self, client_id: str = "airflow", extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Airflow connection fields for an API client."""
        conn: dict[str, Any] = {
            "conn_type": "spotfire",
            "host": self.url,
            "login": client_id,
            "password": self.client_secret(client_id),
        }
        if extra:
            conn["extra"] = extra
        return conn

    def connection_json(self, client_id: str = "airflow", extra: dict[str, Any] | None = None) -> str:
        """Airflow connection JSON (value for ``AIRFLOW_CONN_...``)."""
        return json.dumps(self.connection_dict(client_id, extra))

    def connection_uri(self, client_id: str = "airflow") -> str:
        """Airflow connection URI (``spotfire://http://login:password@127.0.0.1%3APORT``)."""
        scheme, rest = self.url.split("://", 1)
        secret = self.client_secret(client_id) or ""
        auth = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
        return f"spotfire://{scheme}://{auth}@{quote(rest, safe='')}"

    # ------------------------------------------------------------------ HTTP helpers (use the admin API)
    def http(self) -> httpx.Client:
        """An httpx client for this emulator (verifies the self-signed certificate when TLS is on)."""
        if self._http is None:
            verify: ssl.SSLContext | bool = False  # plain http: skip loading the CA bundle
            if self.cert_path:
                verify = ssl.create_default_context(cafile=self.cert_path)
            self._http = httpx.Client(base_url=self.url, verify=verify, timeout=30)
        return self._http

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.http().request(method, "/_emulator" + path, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def inspect(self) -> dict[str, Any]:
        """``GET /_emulator/state``."""
        return self._admin("GET", "/state")

    def requests_log(self, path_prefix: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /_emulator/requests`` (oldest first)."""
        params: dict[str, Any] = {}
        if path_prefix:
            params["path_prefix"] = path_prefix
        if limit:
            params["limit"] = limit
        return self._admin("GET", "/requests", params=params)

    def set_config(self, **patch: Any) -> dict[str, Any]:
        """``PATCH /_emulator/config``; returns the new configuration."""
        return self._admin("PATCH", "/config", json=patch)

    def reset(self, keep_config: bool = False) -> None:
        """``POST /_emulator/reset``: seeded state and (unless ``keep_config``) the start-up config."""
        self._admin("POST", "/reset", params={"keep_config": "true"} if keep_config else None)

    def advance_clock(self, seconds: float) -> None:
        """``POST /_emulator/clock/advance``."""
        self._admin("POST", "/clock/advance", json={"seconds": seconds})

    def freeze_clock(self, frozen: bool = True) -> None:
        """``POST /_emulator/clock/freeze``: only :meth:`advance_clock` moves a frozen clock."""
        self._admin("POST", "/clock/freeze", json={"frozen": frozen})

    def inject_faults(self, *faults: str, path_prefix: str | None = None, method: str | None = None) -> None:
        """``POST /_emulator/faults``: the next matching requests get these faults, in order."""
        self._admin(
            "POST", "/faults", json={"faults": list(faults), "path_prefix": path_prefix, "method": method}
        )

    def forget_as_job(self, job_id: str) -> dict[str, Any]:
        """``POST /_emulator/automation/jobs/{id}/forget``."""
        return self._admin("POST", f"/automation/jobs/{job_id}/forget")

    def as_jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        """``GET /_emulator/automation/jobs[?state=]``: id, state, status_polls, abort_requests, times."""
        return self._admin("GET", "/automation/jobs", params={"state": state} if state else None)

    def as_job(self, job_id: str) -> dict[str, Any]:
        """``GET /_emulator/automation/jobs/{id}`` (history, status_polls, status_poll_times, ...)."""
        return self._admin("GET", f"/automation/jobs/{job_id}")

    def upload_jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        """``GET /_emulator/library/jobs[?state=]``: id, state, status_polls, cancel_requests, times."""
        return self._admin("GET", "/library/jobs", params={"state": state} if state else None)

    def oauth_stats(self) -> dict[str, Any]:
        """``GET /_emulator/oauth/stats``: refresh_requests, reuse_detected, grants_revoked, ..."""
        return self._admin("GET", "/oauth/stats")

    def item_content(self, item_id: str) -> bytes:
        """``GET /_emulator/library/items/{id}/content``."""
        resp = self.http().get(f"/_emulator/library/items/{item_id}/content")
        resp.raise_for_status()
        return resp.content
