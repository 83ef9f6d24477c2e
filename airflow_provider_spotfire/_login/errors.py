"""The one error type of ``airflow-spotfire login`` / ``revoke``."""

from __future__ import annotations

from airflow_provider_spotfire.exceptions import SpotfireApiError, SpotfireError


class LoginError(SpotfireError):
    """``login`` or ``revoke`` could not be completed; the message says why and how to fix it."""


def reason(exc: SpotfireApiError) -> str:
    """``HTTP 401 invalid_client (description)`` for messages."""
    text = f"HTTP {exc.status_code}" + (f" {exc.code}" if exc.code else "")
    return text + (f" ({exc.description.rstrip('.')})" if exc.description else "")
