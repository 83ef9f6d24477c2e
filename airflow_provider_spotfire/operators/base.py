"""What every Spotfire operator and sensor shares: the connection id, the hook and deferrable default."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import conf

from airflow_provider_spotfire.hooks.spotfire import SpotfireHook


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from the Airflow config (False when unset)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class SpotfireHookMixin:
    """Gives an operator/sensor ``spotfire_conn_id`` and a lazily built :class:`SpotfireHook`."""

    spotfire_conn_id: str

    @cached_property
    def hook(self) -> SpotfireHook:
        return SpotfireHook(self.spotfire_conn_id)

    @staticmethod
    def deadline_from(execution_timeout: Any, start: float) -> float | None:
        """Wall-clock deadline (epoch seconds) from a task's execution_timeout, for triggers."""
        if execution_timeout is None:
            return None
        return start + execution_timeout.total_seconds()
