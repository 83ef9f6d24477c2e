"""Apache Airflow provider for Spotfire Server."""

from __future__ import annotations

from airflow_provider_spotfire._version import __version__
from airflow_provider_spotfire.provider_info import get_provider_info

__all__ = ["__version__", "get_provider_info"]
