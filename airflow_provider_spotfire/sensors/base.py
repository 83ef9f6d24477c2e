"""What the job sensors share: the poll timing and the wait (poke from a worker, or check once and defer)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import BaseSensorOperator, Context, PokeReturnValue

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._connection import DEFAULT_CONN_ID
from airflow_provider_spotfire.operators.base import (
    SpotfireHookMixin,
    default_deferrable,
    poke_interval_given,
)
from airflow_provider_spotfire.triggers.base import SpotfirePollingTrigger
from airflow_provider_spotfire.triggers.schedule import PollSchedule


class SpotfireJobSensor(SpotfireHookMixin, BaseSensorOperator):
    """Base of the sensors that wait for a Spotfire job started elsewhere (they never stop it).

    Owns the poll timing and :meth:`execute`: poke (or reschedule) from a worker or, when
    deferrable, one immediate :meth:`poke` and then the wait in the trigger of :meth:`wait_trigger`.
    A sensor says how to check once (:meth:`poke`), which trigger waits, and how to resume
    (``execute_complete``).

    :param job_id: the job id (templated).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_schedule: when deferred, a :class:`~airflow_provider_spotfire.triggers.schedule.PollSchedule`
        instead of a fixed ``poke_interval``. When neither is given (nor in ``default_args``), the
        connection's ``poll_interval`` extra sets both at execute time, else ``poke_interval`` is
        :attr:`default_poke_interval`.
    :param spotfire_conn_id: the ``spotfire`` connection.
    """

    template_fields: Sequence[str] = ("job_id",)
    default_poke_interval: ClassVar[float] = 60.0
    """``poke_interval`` when neither it nor ``poll_schedule`` nor the connection's extra is given."""

    def __init__(
        self,
        *,
        job_id: str,
        deferrable: bool = default_deferrable(),
        poll_schedule: PollSchedule | None = None,
        spotfire_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        interval_given = poke_interval_given(kwargs)
        if not interval_given:
            kwargs["poke_interval"] = self.default_poke_interval
        super().__init__(**validate.sensor_timing(kwargs))
        self.poll_schedule = PollSchedule.of(poll_schedule or self.poke_interval)
        # neither given (nor in default_args): the connection's poll_interval extra sets both at execute
        self._poll_from_connection = poll_schedule is None and not interval_given
        self.job_id = job_id
        self.deferrable = deferrable
        self.spotfire_conn_id = spotfire_conn_id

    @abstractmethod
    def poke(self, context: Context) -> PokeReturnValue:
        """One status check: done (with the XCom value), not yet, or raise when the job failed."""

    @abstractmethod
    def wait_trigger(self) -> SpotfirePollingTrigger:
        """The trigger that waits for the job in the triggerer (it must never stop the job)."""

    def defer_timeout(self) -> timedelta | None:
        """Backstop of the deferred wait (``None``: the trigger's own deadline only)."""
        return None

    def execute(self, context: Context) -> Any:
        """Poke (or reschedule); when deferrable, check once and hand the wait to the trigger."""
        if self._poll_from_connection:
            self.poll_schedule = self.connection_poll_schedule(self.poll_schedule)
            self.poke_interval = self.poll_schedule.interval
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(trigger=self.wait_trigger(), method_name="execute_complete", timeout=self.defer_timeout())


__all__ = ["SpotfireJobSensor"]
