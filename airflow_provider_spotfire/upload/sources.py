"""What the upload operator's ``source`` may be, checked when the task is built and resolved when it runs."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Literal

from airflow.providers.common.compat.sdk import XComArg

from airflow_provider_spotfire._sbdf_file import assert_sbdf_file
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireDataError

SourceKind = Literal["file", "dataframe", "callable"]


def is_dataframe(value: Any) -> bool:
    """True for a pandas DataFrame (without importing pandas: only if it is imported already)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


class UntemplatedSource:
    """Holds a DataFrame or callable ``source`` so that template rendering leaves it alone.

    (Airflow calls callables found in template fields and probes objects for ``resolve``.)
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        v = self.value
        if is_dataframe(v):
            return f"<DataFrame: {v.shape[0]} rows x {v.shape[1]} columns>"
        return f"<callable {getattr(v, '__qualname__', type(v).__name__)}>"


def wrap_source(source: Any) -> str | XComArg | UntemplatedSource:
    """The operator's stored ``source``: a path or XComArg as is (templated), else wrapped.

    One clear error for anything that can never become an SBDF file or DataFrame.
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str | XComArg):
        return source
    if source is not None and (callable(source) or is_dataframe(source)):
        return UntemplatedSource(source)
    raise SpotfireConfigurationError(
        "source must be the path of an .sbdf file, a pandas DataFrame, an XComArg or a callable "
        f"returning a DataFrame; got {type(source).__name__}."
    )


@dataclass(frozen=True)
class ResolvedSource:
    """``kind`` ``file`` (``value`` is a checked path) or ``dataframe``/``callable`` (a DataFrame)."""

    kind: SourceKind
    value: Any


def resolve_source(source: Any) -> ResolvedSource:
    """The rendered ``source`` as a checked SBDF path or a DataFrame (a callable is called now)."""
    src = source.value if isinstance(source, UntemplatedSource) else source
    if isinstance(src, os.PathLike):
        src = os.fspath(src)
    if isinstance(src, str):
        path = src.strip()
        if not path:
            raise SpotfireConfigurationError(
                "source is an empty string; give the path of an .sbdf file, a DataFrame or a callable."
            )
        assert_sbdf_file(path)
        return ResolvedSource("file", path)
    if is_dataframe(src):
        return ResolvedSource("dataframe", src)
    if callable(src):
        return ResolvedSource("callable", _call_source(src))
    raise SpotfireDataError(
        f"source resolved to {type(src).__name__}; expected the path of an .sbdf file or a pandas "
        "DataFrame (check what the upstream task returns)."
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
    if not is_dataframe(value):
        raise SpotfireDataError(
            f"The source callable {name} returned {type(value).__name__}, not a pandas DataFrame; "
            "return a DataFrame (or pass the path of an .sbdf file as source)."
        )
    return value


__all__ = ["ResolvedSource", "UntemplatedSource", "is_dataframe", "resolve_source", "wrap_source"]
