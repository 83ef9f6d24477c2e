"""CLI: ``python -m airflow_provider_spotfire.emulator --port 8080`` runs the emulator in the foreground.

It prints the URL, the seeded API clients and a ready ``export AIRFLOW_CONN_SPOTFIRE_DEFAULT=...`` line, and
stops cleanly on SIGTERM / SIGINT. This is a development/test tool, not a Spotfire Server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

# CLI flag -> EmulatorConfig field
FLAG_FIELDS = {
    "token_lifetime": "token_lifetime",
    "fault_503_rate": "rate_503",
    "fault_429_rate": "rate_429",
    "retry_after": "retry_after",
    "drop_rate": "drop_rate",
    "latency_ms": "latency_ms",
    "as_queue_seconds": "as_queue_seconds",
    "as_run_seconds": "as_run_seconds",
    "as_max_concurrent_jobs": "as_max_concurrent_jobs",
    "fault_seed": "fault_seed",
    "max_upload_bytes": "max_upload_bytes",
    "min_chunk_bytes": "min_chunk_bytes",
    "refresh_token_reuse_detection": "refresh_token_reuse_detection",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the emulator CLI."""
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_spotfire.emulator",
        description="Spotfire Server emulator (development/test tool, not a Spotfire Server).",
    )
    p.add_argument("--port", type=int, default=8080, help="TCP port (0 = pick a free one; default 8080)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--config", help="JSON file with EmulatorConfig fields")
    p.add_argument("--token-lifetime", type=int, help="access token lifetime in seconds (default 3600)")
    p.add_argument("--fault-503-rate", type=float, help="probability of injected 503 server_busy")
    p.add_argument("--fault-429-rate", type=float, help="probability of injected 429 rate_limit_exceeded")
    p.add_argument("--retry-after", type=int, help="Retry-After seconds on 503/429 (default 1)")
    p.add_argument("--drop-rate", type=float, help="probability of a dropped connection")
    p.add_argument("--latency-ms", type=int, help="added latency per API request in ms")
    p.add_argument("--fault-seed", type=int, help="seed of the fault RNG (default 0)")
    p.add_argument("--as-queue-seconds", type=float, help="default Automation Services queue time (0.3)")
    p.add_argument("--as-run-seconds", type=float, help="default Automation Services run time (1.5)")
    p.add_argument(
        "--as-max-concurrent-jobs", type=int, help="Queued+InProgress jobs before starts get Busy (20)"
    )
    p.add_argument("--max-upload-bytes", type=int, help="maximum upload size in bytes")
    p.add_argument("--min-chunk-bytes", type=int, help="minimum chunk size in bytes (all but the last chunk)")
    p.add_argument(
        "--refresh-token-reuse-detection",
        action="store_true",
        default=None,
        help="revoke the whole grant when a rotated refresh token is presented again",
    )
    p.add_argument("--tls", action="store_true", help="serve https with a throwaway self-signed certificate")
    return p


def config_from_args(args: argparse.Namespace) -> Any:
    """EmulatorConfig from ``--config`` plus the individual flags (flags win)."""
    from airflow_provider_spotfire.emulator.config import EmulatorConfig

    cfg = EmulatorConfig.from_json_file(args.config) if args.config else EmulatorConfig()
    patch = {
        field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None
    }
    return cfg.patched(**patch) if patch else cfg


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except (OSError, ValueError) as exc:
        print(f"error: invalid configuration: {exc}", file=sys.stderr)
        return 2

    from airflow_provider_spotfire.emulator.server import EmulatorServer

    server = EmulatorServer(config=config, host=args.host, port=args.port, tls=args.tls)
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        out = sys.stdout
        print("Spotfire Server emulator (development/test tool, NOT a Spotfire Server)", file=out)
        print(f"Listening on {server.url}", file=out)
        if server.cert_path:
            print(f"Self-signed certificate: {server.cert_path}", file=out)
        print(f"Inspection: {server.url}/_emulator/state  (API docs: {server.url}/_emulator/docs)", file=out)
        print("API clients:", file=out)
        with server.state.lock:
            clients = list(server.state.clients.values())
        for c in clients:
            secret = c.client_secret if c.client_secret is not None else "(public, PKCE)"
            print(
                f"  {c.client_id:<16} secret={secret:<24} profile={c.profile:<10} "
                f"scopes={' '.join(c.scopes)}",
                file=out,
            )
        print(f"export AIRFLOW_CONN_SPOTFIRE_DEFAULT='{server.connection_json('airflow')}'", file=out)
        out.flush()
        while not stop.wait(0.1):
            pass
    finally:
        server.stop()
    print("Spotfire Server emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
