"""What the upload operator's ``source`` may be, checked when the task is built and resolved when it runs.

A source is either the path of an SBDF file (uploaded as it is) or a *table source*: a pandas
DataFrame, an iterable of DataFrames, a ``pyarrow.Table`` / ``RecordBatch`` / ``RecordBatchReader``,
an iterable of RecordBatches or a polars DataFrame (see
:func:`airflow_provider_spotfire.sbdf.is_table_source`) -- given directly or returned by a
zero-argument callable (typically a generator function that yields batches when the task runs).
Table sources are written as SBDF while they are uploaded (no temporary file).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from airflow.providers.common.compat.sdk import XComArg

from airflow_provider_spotfire._sbdf_file import assert_sbdf_file, is_table_source
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireDataError

SourceKind = Literal["file", "dataframe", "callable", "arrow", "polars", "batches"]

TABLE_SOURCES = (
    "a pandas DataFrame, an iterable of DataFrames, a pyarrow Table, RecordBatch or RecordBatchReader, "
    "an iterable of RecordBatches or a polars DataFrame"
)


def is_dataframe(value: Any) -> bool:
    """True for a pandas DataFrame (without importing pandas: only if it is imported already)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def table_kind(value: Any) -> SourceKind:
    """``dataframe``, ``arrow`` (Table, RecordBatch, RecordBatchReader), ``polars`` or ``batches``."""
    if is_dataframe(value):
        return "dataframe"
    module = type(value).__module__.split(".")[0]
    if module == "pyarrow":
        return "arrow"
    if module == "polars":
        return "polars"
    return "batches"


class UntemplatedSource:
    """Holds a table source or callable ``source`` so that template rendering leaves it alone.

    (Airflow calls callables found in template fields and probes objects for ``resolve``.)
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        v = self.value
        if is_dataframe(v):
            return f"<DataFrame: {v.shape[0]} rows x {v.shape[1]} columns>"
        if is_table_source(v):
            return f"<table source {type(v).__name__}>"
        return f"<callable {getattr(v, '__qualname__', type(v).__name__)}>"


def wrap_source(source: Any) -> str | XComArg | UntemplatedSource:
    """The operator's stored ``source``: a path or XComArg as is (templated), else wrapped.

    One clear error for anything that can never become an SBDF file or a table.
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str | XComArg):
        return source
    if source is not None and (callable(source) or is_table_source(source)):
        return UntemplatedSource(source)
    raise SpotfireConfigurationError(
        f"source must be the path of an .sbdf file, an XComArg, {TABLE_SOURCES}, or a callable "
        f"returning one of these (e.g. a generator function yielding batches); got {type(source).__name__}."
    )


@dataclass(frozen=True)
class ResolvedSource:
    """``kind`` ``file`` (``value`` is a checked path), else a table source (``kind`` says which,
    ``callable`` when a callable returned it)."""

    kind: SourceKind
    value: Any

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    def close(self) -> None:
        """Close a generator source early (runs its ``finally``: cursors, connections)."""
        close = getattr(self.value, "close", None)
        if isinstance(self.value, Iterator) and callable(close):
            close()


def resolve_source(source: Any) -> ResolvedSource:
    """The rendered ``source`` as a checked SBDF path or a table source (a callable is called now)."""
    src = source.value if isinstance(source, UntemplatedSource) else source
    if isinstance(src, os.PathLike):
        src = os.fspath(src)
    if isinstance(src, str):
        path = src.strip()
        if not path:
            raise SpotfireConfigurationError(
                "source is an empty string; give the path of an .sbdf file, a table or a callable."
            )
        assert_sbdf_file(path)
        return ResolvedSource("file", path)
    if is_table_source(src):
        return ResolvedSource(table_kind(src), src)
    if callable(src):
        return ResolvedSource("callable", _call_source(src))
    raise SpotfireDataError(
        f"source resolved to {type(src).__name__}; expected the path of an .sbdf file or {TABLE_SOURCES} "
        "(check what the upstream task returns)."
    )


def _call_source(src: Any) -> Any:
    name = getattr(src, "__qualname__", None) or repr(src)
    try:
        value = src()
    except Exception as exc:
        raise SpotfireDataError(
            f"The source callable {name} raised {type(exc).__name__}: {exc}. Fix the callable; "
            "nothing was uploaded."
        ) from exc
    if not is_table_source(value):
        raise SpotfireDataError(
            f"The source callable {name} returned {type(value).__name__}, not a table: return (or yield "
            f"batches of) {TABLE_SOURCES}, or pass the path of an .sbdf file as source."
        )
    return value


__all__ = [
    "TABLE_SOURCES",
    "ResolvedSource",
    "UntemplatedSource",
    "is_dataframe",
    "resolve_source",
    "table_kind",
    "wrap_source",
]
