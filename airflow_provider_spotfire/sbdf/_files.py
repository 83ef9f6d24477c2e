"""SBDF files: write a table source to a path or a temporary file with our writer; read one back."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import pandas as pd

from airflow_provider_spotfire._sbdf_file import assert_sbdf_file
from airflow_provider_spotfire.exceptions import SpotfireDataError
from airflow_provider_spotfire.sbdf._stream import SbdfByteStream


@dataclass(frozen=True, slots=True)
class SbdfWriteResult:
    """What :func:`write_sbdf` / :func:`temporary_sbdf` wrote."""

    path: str
    rows: int
    columns: int
    bytes: int
    notes: list[str] = field(default_factory=list)
    column_types: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (for XCom or logs)."""
        return asdict(self)  # copies the lists and dicts


def write_sbdf(
    df: Any,
    path: str | os.PathLike[str],
    *,
    timezone: str | dt.tzinfo = "UTC",
    keep_index: bool = False,
    table_metadata: Mapping[str, Any] | None = None,
    column_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    slice_rows: int | None = None,
) -> SbdfWriteResult:
    """Normalise ``df`` (see :func:`prepare_dataframe`) and write it to ``path`` as SBDF.

    ``df`` is a DataFrame or any other source :func:`iter_sbdf_bytes` takes. The file is written
    next to ``path`` under a temporary name and renamed into place, so ``path`` is either the
    complete new file or left untouched when anything fails; nothing is created when the first
    batch cannot be written.
    """
    stream = SbdfByteStream(
        df,
        time_zone=timezone,
        keep_index=keep_index,
        slice_rows=slice_rows,
        table_metadata=table_metadata,
        column_metadata=column_metadata,
    )
    first = next(stream)  # normalises the first batch: data errors surface before any file exists
    target = os.fsdecode(os.fspath(path))
    directory, base = os.path.split(os.path.abspath(target))
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    # Create it ourselves (O_EXCL, 0o666 & ~umask) so the final file gets the usual permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            _drain(first, stream, fh)
        os.replace(tmp, target)
    except BaseException:
        stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return _result(stream, target)


@contextlib.contextmanager
def temporary_sbdf(
    df: Any,
    *,
    timezone: str | dt.tzinfo = "UTC",
    keep_index: bool = False,
    dir: str | os.PathLike[str] | None = None,
    table_metadata: Mapping[str, Any] | None = None,
    column_metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[SbdfWriteResult]:
    """Write ``df`` to a temporary SBDF file and yield its :class:`SbdfWriteResult`.

    The file is always removed on exit, also when writing or the ``with`` body raises.
    """
    stream = SbdfByteStream(
        df,
        time_zone=timezone,
        keep_index=keep_index,
        table_metadata=table_metadata,
        column_metadata=column_metadata,
    )
    first = next(stream)
    fd, name = tempfile.mkstemp(prefix="airflow-spotfire-", suffix=".sbdf", dir=dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            _drain(first, stream, fh)
        yield _result(stream, name)
    finally:
        stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def read_sbdf(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an SBDF file with ``spotfire.sbdf.import_data`` (integers come back as Int32/Int64,
    booleans, dates and times as object columns)."""
    from spotfire import sbdf as spotfire_sbdf

    assert_sbdf_file(path)
    try:
        return spotfire_sbdf.import_data(os.fsdecode(os.fspath(path)))
    except spotfire_sbdf.SBDFError as exc:
        raise SpotfireDataError(f"cannot read SBDF file {os.fspath(path)!r}: {exc}") from exc


def _drain(first: bytes, stream: SbdfByteStream, fh: IO[bytes]) -> None:
    fh.write(first)
    for piece in stream:
        fh.write(piece)


def _result(stream: SbdfByteStream, path: str) -> SbdfWriteResult:
    return SbdfWriteResult(
        path=path,
        rows=stream.rows,
        columns=len(stream.column_types),
        bytes=stream.bytes,
        notes=list(stream.notes),
        column_types=dict(stream.column_types),
    )
