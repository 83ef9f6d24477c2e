"""Error wording of ``airflow-spotfire login`` / ``revoke`` (the error type lives in ``exceptions``)."""

from __future__ import annotations

from airflow_provider_spotfire.exceptions import LoginError, SpotfireApiError

__all__ = ["LoginError", "reason"]


def reason(exc: SpotfireApiError) -> str:
    """``HTTP 401 invalid_client (description)`` for messages."""
    text = f"HTTP {exc.status_code}" + (f" {exc.code}" if exc.code else "")
    return text + (f" ({exc.description.rstrip('.')})" if exc.description else "")
