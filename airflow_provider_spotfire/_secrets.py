"""Register secrets with Airflow's secrets masker from sync and async code."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def mask(value: str | None) -> None:
    """Mask ``value`` in every log line of this process (and the task supervisor's)."""
    if not value:
        return
    try:
        from airflow.providers.common.compat.sdk import mask_secret

        mask_secret(value)
    except Exception:  # masking must never break a call; log without the value
        log.debug("Could not register a secret with the secrets masker.", exc_info=True)


async def amask(value: str | None) -> None:
    """Async twin of :func:`mask`: never makes a blocking supervisor call in the event loop."""
    if not value:
        return
    try:
        from airflow.sdk.log import amask_secret  # Airflow >= 3.2

        await amask_secret(value)
        return
    except ImportError:
        pass
    except Exception:
        log.debug("Could not register a secret with the secrets masker.", exc_info=True)
        return
    try:  # older: mask in this process only (the triggerer's logs), no supervisor round trip
        from airflow.sdk.execution_time.secrets_masker import _secrets_masker

        _secrets_masker().add_mask(value)
    except Exception:
        log.debug("Could not register a secret with the secrets masker.", exc_info=True)
