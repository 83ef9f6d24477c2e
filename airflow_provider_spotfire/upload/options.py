"""One typed, frozen set of upload options, validated once where it is built.

The operator, the hook and the upload engine pass the same :class:`UploadOptions` object
instead of copying a dozen keyword arguments at each layer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from airflow_provider_spotfire.api.library import check_description, normalize_keywords
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * MIB
DEFAULT_PARALLELISM = 3
MAX_PARALLELISM = 16
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_FINISH_TIMEOUT = 900.0


def _positive_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SpotfireConfigurationError(f"{name} must be a positive number of seconds, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class UploadOptions:
    """How to upload an item: metadata, chunking and waiting (validated on construction).

    :param overwrite: replace an existing item (otherwise an existing item is an error).
    :param description: item description.
    :param keywords: item keywords: a list or one comma-separated string (stored as a tuple).
    :param chunk_size: bytes per chunk; memory use is about ``chunk_size * (parallelism + 2)``.
    :param parallelism: chunks in flight at once (1 to 16).
    :param wait_finished: after the finish request, poll until the job reports ``finishedAt``.
    :param poll_interval: seconds between those polls.
    :param finish_timeout: seconds to wait for ``finishedAt`` before cancelling the job.
    """

    overwrite: bool = False
    description: str | None = None
    keywords: tuple[str, ...] | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    parallelism: int = DEFAULT_PARALLELISM
    wait_finished: bool = True
    poll_interval: float = DEFAULT_POLL_INTERVAL
    finish_timeout: float = DEFAULT_FINISH_TIMEOUT

    def __post_init__(self) -> None:
        chunk_size, parallelism = self.chunk_size, self.parallelism
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise SpotfireConfigurationError(
                f"chunk_size must be a positive number of bytes, got {chunk_size!r} "
                f"(default {DEFAULT_CHUNK_SIZE})."
            )
        if (
            isinstance(parallelism, bool)
            or not isinstance(parallelism, int)
            or not 1 <= parallelism <= MAX_PARALLELISM
        ):
            raise SpotfireConfigurationError(
                f"parallelism must be an integer from 1 to {MAX_PARALLELISM}, got {parallelism!r} "
                f"(default {DEFAULT_PARALLELISM}; Spotfire limits parallel chunks per job)."
            )
        keywords = normalize_keywords(self.keywords)
        set_field = object.__setattr__  # frozen: normalise once, here
        set_field(self, "keywords", tuple(keywords) if keywords is not None else None)
        set_field(self, "description", check_description(self.description))
        set_field(self, "overwrite", bool(self.overwrite))
        set_field(self, "wait_finished", bool(self.wait_finished))
        set_field(self, "poll_interval", _positive_seconds("poll_interval", self.poll_interval))
        set_field(self, "finish_timeout", _positive_seconds("finish_timeout", self.finish_timeout))

    @classmethod
    def build(cls, base: UploadOptions | None = None, **fields: Any) -> UploadOptions:
        """``base`` (or the defaults) with ``fields`` replaced; an unknown name is one clear error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise SpotfireConfigurationError(
                f"Unknown upload option(s) {', '.join(unknown)}; the options are {', '.join(sorted(known))}."
            )
        return dataclasses.replace(base, **fields) if base is not None else cls(**fields)


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_FINISH_TIMEOUT",
    "DEFAULT_PARALLELISM",
    "DEFAULT_POLL_INTERVAL",
    "MAX_PARALLELISM",
    "UploadOptions",
]
