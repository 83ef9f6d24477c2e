"""Upload progress: what the engine reports, and the bounded log lines the operator writes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PROGRESS_STEPS = 10  # at most one progress line per 10% of the bytes
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float) -> str:
    """``512 B``, ``12.3 KiB``, ``8.0 MiB``, ``1.5 GiB``: the largest unit that keeps the number >= 1."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class UploadProgress:
    """How far an upload is: bytes and chunks acknowledged by the server, elapsed seconds.

    ``total_bytes``/``total_chunks`` are ``None`` while a stream of unknown size is uploaded.
    """

    bytes_sent: int
    total_bytes: int | None
    chunks_sent: int
    total_chunks: int | None
    elapsed: float

    @property
    def fraction(self) -> float | None:
        """0.0 … 1.0, or ``None`` when the total is not known."""
        if self.total_bytes is None:
            return None
        return self.bytes_sent / self.total_bytes if self.total_bytes else 1.0

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes_sent / self.elapsed if self.elapsed > 0 else 0.0


class ProgressLogger:
    """Logs upload progress a bounded number of times.

    Known size: at most once per 10% of the bytes. Unknown size (a stream): when the number of
    acknowledged chunks reaches 1, 2, 4, 8, … (about log2(chunks) lines).
    """

    def __init__(self, log: Any, library_path: str, steps: int = PROGRESS_STEPS) -> None:
        self.log = log
        self.library_path = library_path
        self.steps = steps
        self.next_step = 1

    def __call__(self, p: UploadProgress) -> None:
        fraction = p.fraction
        if fraction is None:
            if p.chunks_sent < self.next_step:
                return
            self.next_step = 2 ** (math.floor(math.log2(p.chunks_sent)) + 1)
            self.log.info(
                "Uploading to %s: %s sent in %d chunks (total not known yet), %s/s",
                self.library_path,
                format_bytes(p.bytes_sent),
                p.chunks_sent,
                format_bytes(p.rate),
            )
            return
        reached = int(fraction * self.steps + 1e-9)
        if reached < self.next_step:
            return
        self.next_step = reached + 1
        self.log.info(
            "Uploading to %s: %s of %s (%d%%), %d/%d chunks, %s/s",
            self.library_path,
            format_bytes(p.bytes_sent),
            format_bytes(p.total_bytes or 0),
            round(fraction * 100),
            p.chunks_sent,
            p.total_chunks or 0,
            format_bytes(p.rate),
        )


__all__ = ["PROGRESS_STEPS", "ProgressLogger", "UploadProgress", "format_bytes"]
