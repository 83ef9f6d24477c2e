"""Bytes to upload, cut into chunks: an SBDF file (known size) or a byte stream (size maybe unknown).

Both are read once, front to back; :func:`cut_chunks` re-cuts pieces of any size into chunks of
exactly ``chunk_size`` bytes (the last one shorter), copying each byte at most once.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable, Iterator
from typing import Protocol

from airflow_provider_spotfire._sbdf_file import SBDF_MAGIC, assert_sbdf_file
from airflow_provider_spotfire.exceptions import SpotfireDataError, SpotfireError

Piece = bytes | bytearray | memoryview


class ByteSource(Protocol):
    """What the upload engine reads: ``size`` (``None`` if unknown) and the pieces, once."""

    size: int | None
    name: str

    def pieces(self, chunk_size: int) -> Iterator[Piece]:
        """The bytes, front to back (``chunk_size`` is a hint for the piece size)."""
        ...

    def check_complete(self, consumed: int) -> None:
        """Raise when ``consumed`` bytes (all there were) is not what the source promised."""
        ...


class FileSource:
    """An SBDF file on disk; checked (exists, not empty, SBDF magic) on construction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fsdecode(os.fspath(path))
        assert_sbdf_file(self.path)
        self.size: int | None = os.path.getsize(self.path)
        self.name = repr(self.path)

    def pieces(self, chunk_size: int) -> Iterator[Piece]:
        """Reads of ``chunk_size`` bytes, stopping once more than the size known at start was read."""
        limit = (self.size or 0) + 1
        read = 0
        with open(self.path, "rb") as fh:
            while read < limit and (piece := fh.read(chunk_size)):
                read += len(piece)
                yield piece

    def check_complete(self, consumed: int) -> None:
        if consumed != self.size:
            raise SpotfireDataError(
                f"{self.path!r} changed size during the upload ({self.size} bytes expected, {consumed} "
                "read); do not modify a file while it is uploaded."
            )


class StreamSource:
    """An iterable of byte pieces of any size (e.g. an SBDF writer's output), read once.

    ``size``, when given, is declared to the server and checked at the end. An exception raised
    by the iterable becomes one :class:`SpotfireDataError` naming it (provider errors such as a
    schema error pass unchanged); the engine then cancels the job.
    """

    def __init__(self, pieces: Iterable[Piece], *, size: int | None = None, name: str = "the stream"):
        if isinstance(pieces, bytes | bytearray | memoryview | str) or not isinstance(pieces, Iterable):
            raise SpotfireDataError(
                f"{name} must be an iterable of bytes pieces (e.g. a generator), got {type(pieces).__name__}."
            )
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise SpotfireDataError(
                f"size of {name} must be a positive number of bytes or None, got {size!r}."
            )
        self._pieces = pieces
        self.size = size
        self.name = name

    def pieces(self, chunk_size: int) -> Iterator[Piece]:
        consumed = 0
        it = iter(self._pieces)
        while True:
            try:
                piece = next(it)
            except StopIteration:
                return
            except SpotfireError:
                raise
            except Exception as exc:
                raise SpotfireDataError(
                    f"{self.name} raised {type(exc).__name__} after {consumed} bytes: {exc}. The upload job "
                    "is cancelled and no library item was written; fix the source and retry."
                ) from exc
            if not isinstance(piece, bytes | bytearray | memoryview):
                raise SpotfireDataError(
                    f"{self.name} yielded {type(piece).__name__} after {consumed} bytes; it must yield bytes."
                )
            consumed += memoryview(piece).nbytes
            yield piece

    def check_complete(self, consumed: int) -> None:
        if self.size is not None and consumed != self.size:
            raise SpotfireDataError(
                f"{self.name} gave {consumed} bytes but {self.size} were declared; pass the right size "
                "or none."
            )


def cut_chunks(pieces: Iterable[Piece], chunk_size: int) -> Generator[bytes, None, None]:
    """Chunks of exactly ``chunk_size`` bytes (the last may be shorter); empty pieces are skipped.

    Each byte is copied at most once: a chunk made of several pieces is one ``b"".join`` of views
    of them, a chunk inside one large piece is one slice copy, and a ``bytes`` piece of exactly
    ``chunk_size`` bytes is passed on as it is. Between pieces, views are kept only of immutable
    ``bytes`` pieces of at most ``chunk_size`` bytes; what is kept of a mutable piece (which its
    producer may reuse) or of a larger one (so that it is not held whole) is copied, and copied
    again in the join. The pending chunk holds less than ``2 * chunk_size`` bytes.
    """
    parts: list[Piece] = []  # the pending chunk, in pieces
    held = 0  # bytes in parts
    for piece in pieces:
        view = memoryview(piece).cast("B")
        size = len(view)
        if not size:
            continue
        if not held and size == chunk_size and isinstance(piece, bytes):
            yield piece  # the common case of a file read: no copy
            continue
        # A view is kept only of an immutable piece that is not much larger than what is kept of it
        # (a mutable piece may be overwritten by its producer once the next one is asked for).
        keep_view = isinstance(piece, bytes) and size <= chunk_size
        start = 0
        if held:
            start = min(chunk_size - held, size)
            held += start
            if held < chunk_size:
                parts.append(view if keep_view else bytes(view))  # all of it: start == size
                continue
            parts.append(view[:start])
            yield b"".join(parts)
            parts, held = [], 0
        while size - start >= chunk_size:
            yield bytes(view[start : start + chunk_size])
            start += chunk_size
        if start < size:
            parts.append(view[start:] if keep_view else bytes(view[start:]))
            held = size - start
        del view
    if held:
        yield b"".join(parts)


def check_sbdf_start(first: bytes, name: str, chunk_size: int) -> None:
    """The first chunk starts with the SBDF magic bytes (before any job is created)."""
    tiny_chunks = chunk_size < len(SBDF_MAGIC) and len(first) == chunk_size
    if not (SBDF_MAGIC.startswith(first) if tiny_chunks else first.startswith(SBDF_MAGIC)):
        raise SpotfireDataError(
            f"{name} is not SBDF: it starts with {first[:16]!r}, expected {SBDF_MAGIC!r}. Only SBDF "
            "(spotfire.sbdf) can be uploaded."
        )


__all__ = ["ByteSource", "FileSource", "StreamSource", "check_sbdf_start", "cut_chunks"]
