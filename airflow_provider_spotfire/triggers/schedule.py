"""When a waiting trigger polls next: a fixed interval, or one that grows with the job's age."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_spotfire.exceptions import SpotfireConfigurationError


@dataclass(frozen=True)
class PollSchedule:
    """Seconds between status polls: ``interval``, or ``age_fraction`` of the job's age, up to ``max_interval``.

    ``PollSchedule(15)`` polls every 15 s. ``PollSchedule(5, max_interval=120, age_fraction=0.1)``
    polls every 5 s for the first 50 s, then every tenth of the job's age (every 30 s at 5 minutes),
    never less often than every 2 minutes: a job is noticed finished at most ~10% of its run time
    (and at most 2 minutes) late, with far fewer polls for long jobs. JSON-safe (:meth:`to_dict`),
    so it travels in trigger kwargs.
    """

    interval: float
    max_interval: float | None = None
    age_fraction: float = 0.0

    def __post_init__(self) -> None:
        def bad(what: str) -> SpotfireConfigurationError:
            return SpotfireConfigurationError(f"PollSchedule: {what} (got {self!r}).")

        if not _positive(self.interval):
            raise bad("interval must be a positive number of seconds")
        if not (isinstance(self.age_fraction, int | float) and 0 <= self.age_fraction <= 1):
            raise bad("age_fraction must be between 0 (fixed interval) and 1")
        if self.max_interval is not None and not (
            _positive(self.max_interval) and self.max_interval >= self.interval
        ):
            raise bad("max_interval must be a number of seconds >= interval, or None")
        if self.age_fraction and self.max_interval is None:
            raise bad("a growing schedule (age_fraction > 0) needs a max_interval cap")
        object.__setattr__(self, "interval", float(self.interval))
        object.__setattr__(self, "age_fraction", float(self.age_fraction))
        if self.max_interval is not None:
            object.__setattr__(self, "max_interval", float(self.max_interval))

    @classmethod
    def adaptive(cls, interval: float, *, max_interval: float, age_fraction: float = 0.1) -> PollSchedule:
        """A schedule that backs off as the job gets older (see the class docstring)."""
        return cls(interval, max_interval=max_interval, age_fraction=age_fraction)

    @classmethod
    def of(cls, value: Any) -> PollSchedule:
        """A schedule from a number of seconds, a :meth:`to_dict` dict or a schedule (kwargs, arguments)."""
        if isinstance(value, PollSchedule):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"interval", "max_interval", "age_fraction"}
            if unknown or "interval" not in value:
                raise SpotfireConfigurationError(
                    f"PollSchedule: expected keys interval, max_interval, age_fraction; got {sorted(value)}."
                )
            return cls(**value)
        if _positive(value):
            return cls(float(value))
        raise SpotfireConfigurationError(
            f"poll_interval must be a positive number of seconds or a PollSchedule, got {value!r}."
        )

    @property
    def is_fixed(self) -> bool:
        return not self.age_fraction

    def delay(self, job_age: float) -> float:
        """Seconds until the next poll of a job that has been running for ``job_age`` seconds."""
        if self.is_fixed:
            return self.interval
        assert self.max_interval is not None
        return min(self.max_interval, max(self.interval, self.age_fraction * max(job_age, 0.0)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_kwarg(self) -> float | dict[str, Any]:
        """What goes in trigger kwargs: the plain number for a fixed interval (as before), else the dict."""
        return self.interval if self.is_fixed else self.to_dict()


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


__all__ = ["PollSchedule"]
