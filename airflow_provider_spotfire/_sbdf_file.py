"""Recognise SBDF files by their magic bytes, without importing pandas (the file-upload path)."""

from __future__ import annotations

import os

from airflow_provider_spotfire.exceptions import SpotfireDataError

SBDF_MAGIC = b"\xdf\x5b\x01"


def is_sbdf_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a readable file starting with the SBDF magic bytes (``DF 5B 01``)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SBDF_MAGIC)) == SBDF_MAGIC
    except OSError:
        return False


def assert_sbdf_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SpotfireDataError` unless ``path`` is an SBDF file (see :func:`is_sbdf_file`)."""
    shown = os.fsdecode(os.fspath(path))
    fix = "export it with spotfire.sbdf.export_data or pass a DataFrame"
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise SpotfireDataError(f"{shown!r} is not an SBDF file (it does not exist); {fix}") from None
    except IsADirectoryError:
        raise SpotfireDataError(f"{shown!r} is not an SBDF file (it is a directory); {fix}") from None
    except OSError as exc:
        raise SpotfireDataError(f"{shown!r} is not an SBDF file (cannot read it: {exc}); {fix}") from exc
    if not head:
        raise SpotfireDataError(f"{shown!r} is not an SBDF file (it is empty); {fix}")
    if not head.startswith(SBDF_MAGIC):
        raise SpotfireDataError(
            f"{shown!r} is not an SBDF file (it starts with {head!r}, expected {SBDF_MAGIC!r}); {fix}"
        )
