"""Extra links shown on Spotfire tasks in the Airflow UI.

The operator stores the URL in XCom under the link's ``xcom_key`` while it runs; the link reads
it back, so it renders on the task's page as soon as the remote object exists.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

from airflow_provider_spotfire._connection import SpotfireConnectionConfig


class _XComUrlLink(BaseOperatorLink):
    xcom_key: ClassVar[str]

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        url = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(url) if url else ""


class SpotfireLibraryItemLink(_XComUrlLink):
    """Opens the uploaded item's folder in the Spotfire web library."""

    name = "Spotfire library item"
    xcom_key = "spotfire_library_item_url"


class SpotfireAutomationJobLink(_XComUrlLink):
    """Opens the Automation Services job (its library job file, when started from the library)."""

    name = "Spotfire Automation Services job"
    xcom_key = "spotfire_automation_job_url"


def library_item_url(config: SpotfireConnectionConfig, library_path: str) -> str:
    """Web library URL of a library path (``/Airflow/Reports/sales``)."""
    return f"{config.server_url}/library#{quote(library_path, safe='/')}"


def automation_job_url(
    config: SpotfireConnectionConfig, *, library_path: str | None = None, library_id: str | None = None
) -> str | None:
    """Web library URL of the job file an Automation Services job was started from.

    Only a job started by library path has an address a browser can open; for a job started by
    library id or from XML there is none (the REST status endpoint needs a bearer token), so None.
    """
    del library_id  # the web library addresses items by path only
    return library_item_url(config, library_path) if library_path else None
