"""The steps a token flow asks its driver to perform (sans-IO, like httpx's ``auth_flow``).

A flow is a generator: it yields an effect, the driver performs it and sends back the result
(or throws the exception it raised into the flow). The same flow runs under the sync driver
(requests, ``time.sleep``, direct store calls) and the async one (aiohttp, ``asyncio.sleep``,
store calls in a worker thread), so every rule is written once.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from airflow_provider_spotfire._steps import Send, Sleep
from airflow_provider_spotfire.oauth.store import Lease, StoredGrant

T = TypeVar("T")


@dataclass(frozen=True)
class LoadGrant:
    """Read the shared grant from the store; the result is a :class:`StoredGrant` or ``None``."""


@dataclass(frozen=True)
class SaveGrant:
    """Write the shared grant to the store."""

    grant: StoredGrant


@dataclass(frozen=True)
class LoadLease:
    """Read the refresh lease from the store; the result is a :class:`Lease` or ``None``."""


@dataclass(frozen=True)
class SaveLease:
    """Write (or, with ``None``, release) the refresh lease."""

    lease: Lease | None


@dataclass(frozen=True)
class MaskSecret:
    """Register a secret with Airflow's secrets masker."""

    value: str = field(repr=False)


Effect = Send | Sleep | LoadGrant | SaveGrant | LoadLease | SaveLease | MaskSecret
Flow = Generator[Effect, Any, T]

__all__ = [
    "Effect",
    "Flow",
    "LoadGrant",
    "LoadLease",
    "MaskSecret",
    "SaveGrant",
    "SaveLease",
    "Send",
    "Sleep",
]
