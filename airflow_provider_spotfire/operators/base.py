"""What every Spotfire operator and sensor shares: the connection id, the hook, the deferrable and poll defaults."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import conf

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from airflow_provider_spotfire.triggers.schedule import PollSchedule


def poll_schedule_argument(poll_interval: Any, default: float) -> PollSchedule:
    """A task's ``poll_interval`` argument as a schedule (one clear error for a bad value); ``None``: ``default``.

    ``None`` means "not given": :meth:`SpotfireHookMixin.connection_poll_schedule` replaces it with the
    connection's ``poll_interval`` extra at execute time.
    """
    if poll_interval is None:
        return PollSchedule(default)
    if isinstance(poll_interval, PollSchedule | dict):
        return PollSchedule.of(poll_interval)
    return PollSchedule(validate.seconds("poll_interval", poll_interval))


def poke_interval_given(kwargs: dict[str, Any]) -> bool:
    """A sensor's kwargs name ``poke_interval``, directly or in ``default_args`` (the task's or the DAG's)."""
    return "poke_interval" in kwargs or "poke_interval" in (kwargs.get("default_args") or {})


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from the Airflow config (False when unset)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class SpotfireHookMixin:
    """Gives an operator/sensor ``spotfire_conn_id`` and a lazily built :class:`SpotfireHook`."""

    spotfire_conn_id: str

    @cached_property
    def hook(self) -> SpotfireHook:
        return SpotfireHook(self.spotfire_conn_id)

    def connection_poll_schedule(self, schedule: PollSchedule) -> PollSchedule:
        """The connection's ``poll_interval`` extra as a fixed schedule, or ``schedule`` when it is unset.

        Called at execute time only by tasks whose ``poll_interval`` was not given: an explicit
        argument (or ``PollSchedule``) always wins.
        """
        interval = self.hook.config.poll_interval
        return schedule if interval is None else PollSchedule(interval)

    @staticmethod
    def deadline_from(execution_timeout: Any, start: float) -> float | None:
        """Wall-clock deadline (epoch seconds) from a task's execution_timeout, for triggers."""
        if execution_timeout is None:
            return None
        return start + execution_timeout.total_seconds()
