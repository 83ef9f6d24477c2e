"""The loopback redirect receiver of ``airflow-spotfire login`` (RFC 8252 7.3)."""

from __future__ import annotations

import html
import http.server
import socket
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_spotfire._login.errors import LoginError

CALLBACK_PATH = "/auth"
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")

_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Spotfire sign-in</title></head>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body></html>"
)


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    """Answers the browser's redirect and hands its query to the :class:`CallbackServer`."""

    server_version = "airflow-spotfire-login"
    receiver: CallbackServer  # set on the per-server subclass

    def do_GET(self) -> None:
        receiver = self.receiver
        parts = urlsplit(self.path)
        if parts.path != receiver.path:
            self._reply(404, "Not found", "This is the Airflow Spotfire sign-in receiver.")
            return
        if receiver.received.is_set():
            self._reply(409, "Already done", "This sign-in was already handled; close this window.")
            return
        receiver.params = parse_qs(parts.query, keep_blank_values=True)
        if "error" in receiver.params:
            error = receiver.params["error"][0]
            self._reply(
                200,
                "Spotfire sign-in was not completed",
                f"Spotfire answered {error}. Return to the terminal.",
            )
        else:
            self._reply(
                200, "Spotfire sign-in received", "You can close this window and return to the terminal."
            )
        receiver.received.set()

    def _reply(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the request line holds the code
        return


class CallbackServer:
    """A one-shot HTTP server on a loopback address that captures the authorization response."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.path = path
        self.params: dict[str, list[str]] | None = None
        self.received = threading.Event()
        handler = type("Handler", (_RedirectHandler,), {"receiver": self})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (http.server.HTTPServer,), {"address_family": family})
        try:
            self.httpd = server_class((host, port), handler)
        except OSError as exc:
            raise LoginError(
                f"Cannot listen on {host}:{port} for the browser redirect ({exc.strerror or exc}). "
                "Pick another --port (0 picks a free one)."
            ) from None
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="spotfire-login",
            daemon=True,
        )

    def __enter__(self) -> CallbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def redirect_target(port: int, redirect_uri: str | None) -> tuple[str, str, int, str]:
    """(template of the redirect URI, bind host, port, path) from --port / --redirect-uri."""
    if redirect_uri is None:
        if not 0 <= port <= 65535:
            raise LoginError(f"--port must be between 0 and 65535 (0 picks a free port), got {port}.")
        return "http://127.0.0.1:{port}" + CALLBACK_PATH, "127.0.0.1", port, CALLBACK_PATH
    parts = urlsplit(redirect_uri)
    try:
        uri_port = parts.port
    except ValueError:
        uri_port = None
    if (
        parts.scheme != "http"
        or parts.hostname not in _LOOPBACK_HOSTS
        or not uri_port
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise LoginError(
            f"--redirect-uri {redirect_uri!r} is not a loopback redirect. Use http://127.0.0.1:<port>/<path> "
            "(or [::1]) with the exact URI registered for the client (register-api-client -R...)."
        )
    host = "::1" if parts.hostname == "::1" else "127.0.0.1"
    return redirect_uri, host, uri_port, parts.path or "/"
