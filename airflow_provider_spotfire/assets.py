"""``spotfire://`` Asset URIs for library items, so DAGs can be scheduled on new Spotfire data.

URI form: ``spotfire://<conn_id>/<library path>``, e.g. ``spotfire://spotfire_default/Airflow/Reports/sales``.
The authority is the Airflow connection id, not the server host: the asset must be known when
the DAG file is parsed, and parsing must neither read connections nor touch secrets.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, quote, unquote

from airflow.providers.common.compat.sdk import Asset

from airflow_provider_spotfire._connection import DEFAULT_CONN_ID

SCHEME = "spotfire"


def library_item_uri(conn_id: str, library_path: str) -> str:
    """The asset URI of a library item reached through connection ``conn_id``."""
    path = "/" + "/".join(p for p in library_path.split("/") if p)
    if path == "/":
        raise ValueError(f"A Spotfire asset needs a library item path, got {library_path!r}.")
    return f"{SCHEME}://{conn_id}{quote(path, safe='/')}"


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise a ``spotfire://`` URI (Airflow's asset URI hook): a connection id and an item path."""
    if not uri.netloc:
        raise ValueError(
            "URI format spotfire:// must name a connection id: spotfire://<conn_id>/<library path>"
        )
    segments = [s for s in unquote(uri.path).split("/") if s]
    if not segments:
        raise ValueError("URI format spotfire:// must contain a library item path after the connection id")
    if uri.query or uri.fragment:
        raise ValueError("URI format spotfire:// takes no query or fragment")
    return uri._replace(path=quote("/" + "/".join(segments), safe="/"))


def create_asset(
    *, conn_id: str = DEFAULT_CONN_ID, library_path: str, extra: dict[str, Any] | None = None
) -> Asset:
    """An Asset for the library item ``library_path`` on the server of ``conn_id``."""
    return Asset(uri=library_item_uri(conn_id, library_path), extra=extra or {})
