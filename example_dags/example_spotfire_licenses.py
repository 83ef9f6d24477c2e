"""Onboarding: give a list of groups their Spotfire licenses, then publish a license report (SBDF).

1. ``groups_to_onboard`` reads the groups and their licenses from the DAG params (edit them when you
   trigger the DAG; the defaults are group ids seeded in the Spotfire Server emulator).
2. ``sync_group_licenses`` is mapped over the groups with ``.expand_kwargs()``: each mapped task makes
   the group's explicitly set licenses match the declaration with the fewest writes (a second run
   writes nothing) and returns the diff as XCom.
3. ``upload_license_report`` writes one row per group, license and enabled function (explicit or
   inherited, and whether this run changed it) as an SBDF file into the library.

Needs a ``spotfire_default`` connection whose API client has ``api.licenses.write`` and
``api.rest.library.upload`` and is a member of the Administrator group.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_spotfire.hooks.spotfire import SpotfireHook
from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.operators.licenses import SpotfireSyncGroupLicensesOperator

REPORT_PATH = "/Airflow/Reports/Group Licenses"

ONBOARDING: list[dict[str, Any]] = [
    {
        "group_id": "5e239d92-8888-4ed1-94e5-bc93c0d5e05a",  # Sales
        "licenses": {
            "Spotfire.Dxp.BusinessAuthor": None,  # None: every function of the license
            "Spotfire.Dxp.WebPlayer": ["openFromLibrary", "exportData", "exportToPdf"],
        },
    },
    {
        "group_id": "2f0b810c-d76c-4f48-87ee-5454f1a14d78",  # Sales EMEA (member of Sales)
        "licenses": {"Spotfire.Dxp.Extensions": ["geoAnalytics", "predictiveAnalytics"]},
    },
    {
        "group_id": "3a33e0f1-7f4d-468e-8588-9e3a2a27a326",  # Finance
        "licenses": {"Spotfire.Dxp.WebPlayer": None, "Spotfire.Dxp.Metrics": ["viewMetrics", "editMetrics"]},
    },
]


def build_license_report() -> pd.DataFrame:
    """One row per onboarded group, license and enabled function (runs inside the upload task)."""
    context = get_current_context()
    groups = [g["group_id"] for g in context["params"]["onboarding"]]
    diffs = context["ti"].xcom_pull(task_ids="sync_group_licenses") or []
    changed = {(d["group_id"], c["license"]) for d in diffs for c in d["changes"]}
    hook = SpotfireHook()
    rows = []
    try:
        for group_id in groups:
            explicit = {lic.name: set(lic.function_names) for lic in hook.get_group_licenses(group_id)}
            for lic in hook.get_group_licenses(group_id, including_heritage=True):
                rows.extend(
                    {
                        "group_id": group_id,
                        "license": lic.name,
                        "license_display_name": lic.display_name,
                        "function": function.name,
                        "function_display_name": function.display_name,
                        "explicit": function.name in explicit.get(lic.name, set()),
                        "changed_by_this_run": (group_id, lic.name) in changed,
                    }
                    for function in lic.functions
                )
    finally:
        hook.close()
    return pd.DataFrame(rows)


with DAG(
    "example_spotfire_licenses",
    schedule=None,
    catchup=False,
    tags=["spotfire", "licenses", "example"],
    params={"onboarding": Param(ONBOARDING, type="array", description="Groups and their licenses")},
    doc_md=__doc__,
):

    @task
    def groups_to_onboard(**context: Any) -> list[dict[str, Any]]:
        return [
            {"group_id": g["group_id"], "licenses": g["licenses"]} for g in context["params"]["onboarding"]
        ]

    sync = SpotfireSyncGroupLicensesOperator.partial(task_id="sync_group_licenses").expand_kwargs(
        groups_to_onboard()
    )

    upload = SpotfireUploadSbdfOperator(
        task_id="upload_license_report",
        library_path=REPORT_PATH,
        # A callable is called by the task: the report reflects the state after the sync, and no
        # DataFrame travels through XCom (that would need pyarrow for Airflow's serializer).
        source=build_license_report,
        overwrite=True,
        description="Licenses of the onboarded groups, written by example_spotfire_licenses",
        keywords=["licenses", "airflow"],
    )

    sync >> upload
