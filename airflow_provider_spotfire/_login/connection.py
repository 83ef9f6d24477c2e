"""The connection ``login``/``revoke`` work on: where it lives, how it is read and updated."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from airflow_provider_spotfire._connection import GRANT_REFRESH_TOKEN, SpotfireConnectionConfig
from airflow_provider_spotfire._login.errors import LoginError

log = logging.getLogger(__name__)

LEGACY_PREFIX = "extra__spotfire__"


@dataclass(frozen=True)
class LocatedConnection:
    """A connection and the secrets backend that defines it."""

    conn: Any
    source: str  # secrets backend class name
    in_metadata_db: bool

    def extra(self) -> dict[str, Any]:
        return parse_extra(self.conn)

    @property
    def where(self) -> str:
        """Where the connection is defined, for messages."""
        if self.in_metadata_db:
            return "the Airflow metadata DB"
        if self.source == "EnvironmentVariablesBackend":
            return f"the environment variable AIRFLOW_CONN_{self.conn.conn_id.upper()}"
        return f"the secrets backend {self.source}"

    def refresh_token(self) -> str | None:
        """The refresh token in the extra (legacy prefix accepted)."""
        extra = self.extra()
        return next(
            (str(extra[k]) for k in ("refresh_token", LEGACY_PREFIX + "refresh_token") if extra.get(k)), None
        )


def parse_extra(conn: Any) -> dict[str, Any]:
    text = getattr(conn, "extra", None) or "{}"
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LoginError(
            f"Spotfire connection {conn.conn_id!r}: its extra is not a JSON object. Fix it with "
            f"`airflow connections edit` or the UI, then run the command again."
        )
    return data


def locate(conn_id: str) -> LocatedConnection:
    """Find the connection the way Airflow's servers do: custom backend, env vars, metadata DB."""
    from airflow.configuration import ensure_secrets_loaded
    from airflow.secrets.metastore import MetastoreBackend

    for backend in ensure_secrets_loaded():
        name = type(backend).__name__
        try:
            conn = backend.get_connection(conn_id=conn_id)
        except Exception as exc:
            if isinstance(backend, MetastoreBackend):
                raise LoginError(
                    f"Cannot read connection {conn_id!r} from the Airflow metadata DB "
                    f"({type(exc).__name__}). Run this command where Airflow's database is configured "
                    "(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN) and initialised (`airflow db migrate`)."
                ) from None
            log.debug("Secrets backend %s could not be read for %s.", name, conn_id, exc_info=True)
            continue
        if conn is not None:
            return LocatedConnection(conn, name, isinstance(backend, MetastoreBackend))
    raise LoginError(
        f"Airflow connection {conn_id!r} does not exist. Create it first, e.g. `airflow connections add "
        f"{conn_id} --conn-type spotfire --conn-host https://spotfire.example.com --conn-login <client id>` "
        "(add --conn-password <client secret> for web clients)."
    )


def login_config(located: LocatedConnection, conn_id: str) -> SpotfireConnectionConfig:
    """Validate host/client/TLS settings as for a refresh-token connection that has no token yet."""
    conn_type = getattr(located.conn, "conn_type", None)
    if conn_type and conn_type != "spotfire":
        raise LoginError(
            f"Connection {conn_id!r} has type {conn_type!r}, not 'spotfire'; pass the id of your Spotfire "
            "connection with --conn-id."
        )
    view = SimpleNamespace(
        conn_id=conn_id,
        host=located.conn.host,
        port=located.conn.port,
        login=located.conn.login,
        password=located.conn.password,
        extra_dejson={
            **_without_grant(located.extra()),
            "grant_type": GRANT_REFRESH_TOKEN,
            "refresh_token": "-",
        },
    )
    return replace(SpotfireConnectionConfig.from_connection(view), refresh_token=None)


def _without_grant(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in extra.items() if k.removeprefix(LEGACY_PREFIX) not in ("grant_type", "refresh_token")
    }


def with_token(extra: dict[str, Any], refresh_token: str | None) -> dict[str, Any]:
    """``extra`` for grant_type refresh_token with ``refresh_token`` (or none, after revoke)."""
    out = {**_without_grant(extra), "grant_type": GRANT_REFRESH_TOKEN}
    if refresh_token:
        out["refresh_token"] = refresh_token
    return out


def update_db_extra(conn_id: str, update: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Rewrite the extra of a connection in the metadata DB in one transaction."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id).limit(1))
        if conn is None:
            raise LoginError(
                f"Airflow connection {conn_id!r} disappeared from the metadata DB; create it again."
            )
        conn.set_extra(json.dumps(update(parse_extra(conn))))
