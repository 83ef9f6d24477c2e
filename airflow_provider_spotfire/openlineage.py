"""OpenLineage facets for Spotfire tasks (needs the optional extra ``[openlineage]``).

Datasets use the namespace ``spotfire://<host>[:port]`` (the server the connection points at) and
the library path as name. Without the OpenLineage provider these helpers return ``None``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow_provider_spotfire._connection import SpotfireConnectionConfig

# SBDF value types → OpenLineage schema field types (SBDF names, lower-cased where no better exists)
_SBDF_TO_OL = {
    "Boolean": "boolean",
    "Integer": "integer",
    "LongInteger": "long",
    "SingleReal": "float",
    "Real": "double",
    "Decimal": "decimal",
    "String": "string",
    "Binary": "binary",
    "Date": "date",
    "DateTime": "timestamp",
    "Time": "time",
    "TimeSpan": "interval",
}


def namespace(config: SpotfireConnectionConfig) -> str:
    """``spotfire://host[:port]`` of the connection's server."""
    return "spotfire://" + urlsplit(config.base_url).netloc


def _operator_lineage() -> Any:
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    return OperatorLineage


def library_item_lineage(
    config: SpotfireConnectionConfig, library_path: str, column_types: dict[str, str] | None
) -> Any:
    """``OperatorLineage`` with the uploaded item as output dataset and its SBDF schema."""
    OperatorLineage = _operator_lineage()
    if OperatorLineage is None:
        return None
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    facets: dict[str, Any] = {}
    if column_types:
        facets["schema"] = SchemaDatasetFacet(
            fields=[
                SchemaDatasetFacetFields(name=name, type=_SBDF_TO_OL.get(kind, str(kind).lower()))
                for name, kind in column_types.items()
            ]
        )
    return OperatorLineage(outputs=[Dataset(namespace=namespace(config), name=library_path, facets=facets)])


def automation_job_lineage(
    config: SpotfireConnectionConfig, *, library_path: str | None, job_id: str | None, status: str | None
) -> Any:
    """``OperatorLineage`` for an Automation Services run: the job file as input, the job in run facets."""
    OperatorLineage = _operator_lineage()
    if OperatorLineage is None:
        return None
    from airflow.providers.common.compat.openlineage.facet import Dataset, ExternalQueryRunFacet

    inputs = [Dataset(namespace=namespace(config), name=library_path)] if library_path else []
    run_facets: dict[str, Any] = {}
    if job_id:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=job_id, source=namespace(config))
    return OperatorLineage(inputs=inputs, run_facets=run_facets, job_facets={})
