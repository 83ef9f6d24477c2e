"""``airflow-spotfire``: bootstrap and revoke the refresh token of a ``spotfire`` connection.

Run it where Airflow's metadata DB is configured (e.g. on the scheduler or api-server host)::

    airflow-spotfire login --conn-id spotfire_default
    airflow-spotfire revoke --conn-id spotfire_default

Exit code 0 on success, 1 on any error (printed as one line to stderr). Secrets are never
printed, except the refresh token by ``login --print-extra``, which says so.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire._login import DEFAULT_TIMEOUT, run_login, run_revoke
from airflow_provider_spotfire.exceptions import SpotfireError


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535 (0 picks a free port), got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Reports usage errors as one line on stderr with exit code 1."""

    def error(self, message: str) -> NoReturn:
        _err(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(1)


def _add_command(commands: Any, name: str, help: str, description: str) -> Any:
    """A subcommand parser with the ``--conn-id`` option every command takes."""
    command = commands.add_parser(name, help=help, description=description)
    command.add_argument(
        "--conn-id", default=DEFAULT_CONN_ID, help="Airflow connection id (default: %(default)s)"
    )
    return command


def _add_login(commands: Any) -> None:
    login = _add_command(
        commands,
        "login",
        help="sign in at Spotfire in a browser and store a refresh token in the connection",
        description=(
            "Run the OAuth2 authorization code flow (PKCE S256, loopback redirect) for the connection's "
            "web or native API client and store the refresh token in the connection (metadata DB)."
        ),
    )
    login.add_argument(
        "--scopes",
        help="space-separated API scopes to request (default: the connection's scopes extra, else all four "
        "API scopes); offline is always added",
    )
    where = login.add_mutually_exclusive_group()
    where.add_argument(
        "--port",
        type=_port,
        default=0,
        help="loopback port of the redirect http://127.0.0.1:PORT/auth (default 0: a free port; web "
        "clients need the registered one)",
    )
    where.add_argument(
        "--redirect-uri",
        help="explicit loopback redirect URI registered for the client, e.g. http://127.0.0.1:8765/callback",
    )
    login.add_argument(
        "--no-browser", action="store_true", help="print the sign-in URL instead of opening a browser"
    )
    login.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for the browser (default: %(default)g)",
    )
    login.add_argument(
        "--print-extra",
        action="store_true",
        help="ALSO PRINTS A SECRET: print the connection extra JSON including the new refresh token to "
        "stdout (for connections kept in env vars or a secrets backend)",
    )


def _add_revoke(commands: Any) -> None:
    _add_command(
        commands,
        "revoke",
        help="revoke the connection's refresh token at Spotfire and remove it from the connection",
        description=(
            "Revoke the stored refresh token (RFC 7009) and remove it from the connection and from the "
            "shared-token Variables spotfire_refresh_token__<conn_id> and spotfire_refresh_lease__<conn_id>."
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``airflow-spotfire``."""
    parser = _Parser(
        prog="airflow-spotfire",
        description="Manage the OAuth2 refresh token of a Spotfire Airflow connection.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{login,revoke}")

    _add_login(commands)
    _add_revoke(commands)
    return parser


def _err(message: str) -> None:
    print("airflow-spotfire: error: " + " ".join(message.split()), file=sys.stderr, flush=True)


def _login(args: argparse.Namespace) -> None:
    def show_url(url: str) -> None:
        print(f"Open this URL in a browser to sign in:\n{url}", file=sys.stderr, flush=True)

    result = run_login(
        args.conn_id,
        open_url=show_url if args.no_browser else None,
        scopes=args.scopes.split() if args.scopes else None,
        port=args.port,
        redirect_uri=args.redirect_uri,
        timeout=args.timeout,
        allow_outside_db=args.print_extra,
    )
    if result.saved:
        print(
            f"Stored a refresh token for client {result.client_id!r} in connection {result.conn_id!r} "
            f"(grant_type refresh_token; scopes: {' '.join(result.scopes)})."
        )
    else:
        print(
            f"Connection {result.conn_id!r} is defined by {result.location}; the refresh token was NOT "
            "stored. Put this extra there (it contains the refresh token, a secret):",
            file=sys.stderr,
        )
    if args.print_extra:
        print(result.extra_json())


def _revoke(args: argparse.Namespace) -> None:
    result = run_revoke(args.conn_id)
    if result.removed_from_connection:
        print(f"Removed the refresh token from connection {result.conn_id!r}.")
    else:
        print(
            f"Connection {result.conn_id!r} is defined by {result.location}: remove its refresh_token extra "
            "there yourself (the token is already revoked)."
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``airflow-spotfire`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (1, already printed)
        return exc.code if isinstance(exc.code, int) else 1
    try:
        if args.command == "login":
            _login(args)
        else:
            _revoke(args)
    except SpotfireError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted; nothing was changed.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
