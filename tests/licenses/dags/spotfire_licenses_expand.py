"""Test DAG: license operators mapped over several groups with .expand() / .expand_kwargs()."""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_provider_spotfire.emulator import seed
from airflow_provider_spotfire.operators.licenses import (
    SpotfireRemoveGroupLicenseOperator,
    SpotfireSetGroupLicenseOperator,
    SpotfireSyncGroupLicensesOperator,
)

with DAG(
    "spotfire_licenses_expand",
    schedule=None,
    params={"metrics_functions": ["viewMetrics"], "license": seed.LIC_EXTENSIONS},
):
    sync = SpotfireSyncGroupLicensesOperator.partial(
        task_id="sync_licenses",
        # nested templates are rendered: the function list comes from the DAG params
        licenses={seed.LIC_WEBPLAYER: None, seed.LIC_METRICS: "{{ params.metrics_functions }}"},
    ).expand(group_id=[seed.GROUP_SALES, seed.GROUP_SALES_EMEA, seed.GROUP_AIRFLOW_UPLOADERS])

    set_license = SpotfireSetGroupLicenseOperator.partial(
        task_id="set_license", license_name="{{ params.license }}"
    ).expand_kwargs(
        [
            {"group_id": seed.GROUP_FINANCE, "license_functions": ["geoAnalytics"]},
            {"group_id": seed.GROUP_AIRFLOW_UPLOADERS, "license_functions": None},
        ]
    )

    remove = SpotfireRemoveGroupLicenseOperator.partial(
        task_id="remove_license", license_name=seed.LIC_BUSINESS_AUTHOR
    ).expand(group_id=[seed.GROUP_SALES, seed.GROUP_SALES_EMEA])

    @task
    def count_changes(diffs: list[dict]) -> int:
        return sum(len(d["changes"]) for d in diffs)

    count_changes(sync.output)
    sync >> set_license >> remove
