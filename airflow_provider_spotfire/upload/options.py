"""One typed, frozen set of upload options, validated once where it is built.

The operator, the hook and the upload engine pass the same :class:`UploadOptions` object
instead of copying a dozen keyword arguments at each layer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire.api.library import check_description, normalize_keywords
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * MIB
DEFAULT_PARALLELISM = 3
MAX_PARALLELISM = validate.MAX_PARALLELISM
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_FINISH_TIMEOUT = 900.0


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
        keywords = normalize_keywords(self.keywords)
        set_field = object.__setattr__  # frozen: normalise once, here
        set_field(self, "chunk_size", validate.chunk_size(self.chunk_size))
        set_field(self, "parallelism", validate.parallelism(self.parallelism))
        set_field(self, "keywords", tuple(keywords) if keywords is not None else None)
        set_field(self, "description", check_description(self.description))
        set_field(self, "overwrite", bool(self.overwrite))
        set_field(self, "wait_finished", bool(self.wait_finished))
        set_field(self, "poll_interval", validate.seconds("poll_interval", self.poll_interval))
        set_field(self, "finish_timeout", validate.seconds("finish_timeout", self.finish_timeout))

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
