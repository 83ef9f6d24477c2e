"""Tables → SBDF: our own vectorised writer, streaming, and the normalisation rules it applies.

* :func:`write_sbdf` / :func:`temporary_sbdf` write a table to a file;
  :func:`iter_sbdf_bytes` yields the same file as ``bytes`` pieces (header + table metadata,
  one table slice per batch slice, end marker) for streaming uploads.
* :func:`prepare_dataframe` applies the normalisation rules alone, for callers of
  ``spotfire.sbdf.export_data``; :func:`read_sbdf` reads a file back with the ``spotfire`` package.

The format notes, the normalisation rules and the deliberate differences from
``spotfire.sbdf.export_data`` are in docs/sbdf.md.
"""

from __future__ import annotations

from airflow_provider_spotfire._sbdf_file import SBDF_MAGIC, assert_sbdf_file, is_sbdf_file, is_table_source
from airflow_provider_spotfire.exceptions import SbdfSchemaError
from airflow_provider_spotfire.sbdf._files import SbdfWriteResult, read_sbdf, temporary_sbdf, write_sbdf
from airflow_provider_spotfire.sbdf._normalise import prepare_dataframe
from airflow_provider_spotfire.sbdf._stream import (
    DEFAULT_SLICE_BYTES,
    SbdfByteStream,
    default_slice_rows,
    iter_sbdf_bytes,
)

__all__ = [
    "DEFAULT_SLICE_BYTES",
    "SBDF_MAGIC",
    "SbdfByteStream",
    "SbdfSchemaError",
    "SbdfWriteResult",
    "assert_sbdf_file",
    "default_slice_rows",
    "is_sbdf_file",
    "is_table_source",
    "iter_sbdf_bytes",
    "prepare_dataframe",
    "read_sbdf",
    "temporary_sbdf",
    "write_sbdf",
]
