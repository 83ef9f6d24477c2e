"""The two steps every sans-IO flow of the package may yield: send a request, wait.

Shared by the hook flows (:mod:`.hooks.flow`) and the token flows (:mod:`.oauth.effects`), so a
driver performs one ``Send`` and one ``Sleep`` whichever flow it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_spotfire._http import HttpRequest


@dataclass(frozen=True)
class Send:
    """Send ``request``; answered with the :class:`HttpResponse`. ``once``: no transport retries."""

    request: HttpRequest
    idempotent: bool
    once: bool = False


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (``time.sleep``/``asyncio.sleep``, or the injected clock in tests)."""

    seconds: float


__all__ = ["Send", "Sleep"]
