"""License operators inside real DAG runs (dag.test()) against the emulator: mapping, templating, XCom."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import EXAMPLE_DAGS, run_dag, task_states, xcom_value

from .conftest import (
    AUTHOR,
    EXTENSIONS,
    FINANCE,
    METRICS,
    SALES,
    SALES_EMEA,
    UPLOADERS,
    WEBPLAYER,
    all_functions,
    assignments,
    license_writes,
)

pytestmark = pytest.mark.usefixtures("airflow_db")

TEST_DAG = Path(__file__).parent / "dags" / "spotfire_licenses_expand.py"


def test_expand_over_several_groups(spotfire_conn_id, spotfire_emulator):
    dr = run_dag(TEST_DAG, "spotfire_licenses_expand")

    states = task_states(dr)
    assert states == {
        **{f"sync_licenses[{i}]": "success" for i in range(3)},
        **{f"set_license[{i}]": "success" for i in range(2)},
        **{f"remove_license[{i}]": "success" for i in range(2)},
        "count_changes": "success",
    }
    state = assignments(spotfire_emulator)
    for group in (SALES, SALES_EMEA, UPLOADERS):
        assert state[group][WEBPLAYER] == all_functions(WEBPLAYER)
        assert state[group][METRICS] == ["viewMetrics"]  # rendered from params.metrics_functions
    assert AUTHOR not in state[SALES] and state[SALES_EMEA][EXTENSIONS] == ["geoAnalytics"]
    assert state[FINANCE][EXTENSIONS] == ["geoAnalytics"]  # license_name rendered from params.license
    assert state[UPLOADERS][EXTENSIONS] == all_functions(EXTENSIONS)

    assert xcom_value(dr, "count_changes") == 6  # 3 groups x (WebPlayer + Metrics)
    sales = xcom_value(dr, "sync_licenses", map_index=0)
    assert sales["group_id"] == SALES and sales["unlisted_kept"] == [AUTHOR]
    removed = xcom_value(dr, "remove_license", map_index=1)
    assert removed["removed"] is False  # Sales EMEA never had Business Author explicitly
    assert len(license_writes(spotfire_emulator)) == 6 + 2 + 1  # a second run writes nothing: see
    # test_sync_applies_the_smallest_change_set_and_second_run_writes_nothing (kept out of here for speed)


def test_example_licenses_dag(spotfire_conn_id, spotfire_emulator, hook):
    dr = run_dag(EXAMPLE_DAGS / "example_spotfire_licenses.py", "example_spotfire_licenses")

    assert task_states(dr) == {
        "groups_to_onboard": "success",
        **{f"sync_group_licenses[{i}]": "success" for i in range(3)},
        "upload_license_report": "success",
    }
    state = assignments(spotfire_emulator)
    assert state[SALES][AUTHOR] == all_functions(AUTHOR)
    assert state[SALES][WEBPLAYER] == ["openFromLibrary", "exportData", "exportToPdf"]
    assert state[SALES_EMEA][EXTENSIONS] == ["geoAnalytics", "predictiveAnalytics"]
    assert state[FINANCE][METRICS] == ["viewMetrics", "editMetrics"]
    finance = xcom_value(dr, "sync_group_licenses", map_index=2)
    assert [(c["action"], c["license"]) for c in finance["changes"]] == [("update", METRICS)]

    # the report: one row per group, license and function enabled (explicitly or inherited)
    expected_rows = sum(
        len(lic.functions)
        for group in (SALES, SALES_EMEA, FINANCE)
        for lic in hook.get_group_licenses(group, including_heritage=True)
    )
    upload = xcom_value(dr, "upload_license_report")
    assert upload["library_path"] == "/Airflow/Reports/Group Licenses"
    assert upload["rows"] == expected_rows
    item = next(
        i for i in spotfire_emulator.inspect()["library"]["items"] if i["path"] == upload["library_path"]
    )
    assert item["type"] == "spotfire.sbdf" and item["size"] == upload["bytes"]
