"""Recognise SBDF files and table sources without importing pandas or pyarrow (the file-upload path)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

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


# (module, class) of the objects iter_sbdf_bytes accepts as one table or one batch.
_TABLE_CLASSES = (
    ("pandas", "DataFrame"),
    ("pyarrow", "Table"),
    ("pyarrow", "RecordBatch"),
    ("pyarrow", "RecordBatchReader"),
    ("polars", "DataFrame"),
)


def _is_table_object(obj: Any) -> bool:
    for module_name, class_name in _TABLE_CLASSES:
        module = sys.modules.get(module_name)  # an object of the class implies its module is loaded
        cls = getattr(module, class_name, None) if module is not None else None
        if cls is not None and isinstance(obj, cls):
            return True
    return False


def is_table_source(obj: Any) -> bool:
    """True when ``obj`` is something :func:`airflow_provider_spotfire.sbdf.iter_sbdf_bytes` writes.

    That is a pandas DataFrame, a ``pyarrow.Table`` / ``RecordBatch`` / ``RecordBatchReader``, a
    polars DataFrame, a list or tuple of DataFrames / RecordBatches, or an iterator (e.g. a
    generator) -- an iterator's items are checked as they are consumed, not here. Paths, strings,
    bytes and mappings are not table sources.
    """
    if _is_table_object(obj):
        return True
    if isinstance(obj, str | bytes | bytearray | os.PathLike | Mapping):
        return False
    if isinstance(obj, list | tuple):
        return bool(obj) and all(_is_table_object(item) for item in obj)
    return isinstance(obj, Iterator)
