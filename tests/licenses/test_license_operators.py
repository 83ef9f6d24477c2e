"""License operators, executed against the emulator over real HTTP (plus their pure planning helpers)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_spotfire.api.licenses import License, LicenseFunction
from airflow_provider_spotfire.exceptions import (
    SpotfireBadRequestError,
    SpotfireConfigurationError,
    SpotfireError,
    SpotfirePermissionError,
    SpotfireServerError,
)
from airflow_provider_spotfire.operators.licenses import (
    SpotfireRemoveGroupLicenseOperator,
    SpotfireSetGroupLicenseOperator,
    SpotfireSyncGroupLicensesOperator,
    normalize_functions,
    normalize_license_spec,
    plan_license_sync,
    validate_license_spec,
)

from .conftest import (
    ANALYST,
    AUTHOR,
    EXTENSIONS,
    FAST_RETRIES,
    FINANCE,
    METRICS,
    SALES_EMEA,
    UPLOADERS,
    WEBPLAYER,
    all_functions,
    assignments,
    license_writes,
)


def logged(capsys) -> str:
    """What the operator logged (Airflow 3 task loggers are structlog, printing to stdout)."""
    captured = capsys.readouterr()
    return captured.out + captured.err


def run(operator):
    """Execute an operator in-process the way a worker does after templating."""
    operator.hook.retry_policy = FAST_RETRIES
    return operator.execute({})


# ------------------------------------------------------------------------------------------- set
def test_set_group_license_with_functions_and_read_back(spotfire_conn_id, spotfire_emulator):
    op = SpotfireSetGroupLicenseOperator(
        task_id="set", group_id=UPLOADERS, license_name=WEBPLAYER, license_functions=["exportData", "print"]
    )
    result = run(op)

    assert result == {
        "group_id": UPLOADERS,
        "license": WEBPLAYER,
        "functions": ["exportData", "print"],  # catalogue order
        "changed": True,
        "functions_before": [],
    }
    assert assignments(spotfire_emulator)[UPLOADERS] == {WEBPLAYER: ["exportData", "print"]}
    assert json.loads(json.dumps(result)) == result
    assert [w["method"] for w in license_writes(spotfire_emulator)] == ["PUT"]


@pytest.mark.parametrize("functions", [None, []])
def test_set_group_license_none_or_empty_means_all_functions(spotfire_conn_id, spotfire_emulator, functions):
    op = SpotfireSetGroupLicenseOperator(
        task_id="set", group_id=SALES_EMEA, license_name=EXTENSIONS, license_functions=functions
    )
    result = run(op)

    assert result["functions"] == all_functions(EXTENSIONS)
    assert result["functions_before"] == ["geoAnalytics"]
    assert assignments(spotfire_emulator)[SALES_EMEA][EXTENSIONS] == all_functions(EXTENSIONS)


def test_set_group_license_already_in_place_writes_nothing(spotfire_conn_id, spotfire_emulator, capsys):
    op = SpotfireSetGroupLicenseOperator(
        task_id="set", group_id=FINANCE, license_name=METRICS, license_functions=["viewMetrics"]
    )
    result = run(op)
    assert result["changed"] is False
    assert license_writes(spotfire_emulator) == []
    assert f"Group {FINANCE} already has {METRICS} with exactly these functions; nothing to do." in logged(
        capsys
    )


def test_set_group_license_fails_clearly_when_the_server_does_not_apply_it(
    spotfire_conn_id, spotfire_emulator, monkeypatch
):
    from airflow_provider_spotfire.emulator import licenses as emulator_licenses

    real = emulator_licenses.parse_functions
    # a server that answers 204 but stores only the first requested function
    monkeypatch.setattr(emulator_licenses, "parse_functions", lambda body: (real(body) or [])[:1] or None)
    op = SpotfireSetGroupLicenseOperator(
        task_id="set", group_id=UPLOADERS, license_name=WEBPLAYER, license_functions=["exportData", "print"]
    )
    with pytest.raises(SpotfireError) as info:
        run(op)
    assert str(info.value).startswith(
        f"Spotfire accepted the license changes for group {UPLOADERS} but did not apply them: "
        f"{WEBPLAYER}: expected [exportData, print], server has [exportData]."
    )


# ------------------------------------------------------------------------------------------- remove
def test_remove_group_license(spotfire_conn_id, spotfire_emulator):
    result = run(SpotfireRemoveGroupLicenseOperator(task_id="rm", group_id=FINANCE, license_name=METRICS))

    assert result == {
        "group_id": FINANCE,
        "license": METRICS,
        "removed": True,
        "functions_before": ["viewMetrics"],
        "inherited_functions": [],
    }
    assert assignments(spotfire_emulator)[FINANCE] == {WEBPLAYER: all_functions(WEBPLAYER)}
    assert [w["method"] for w in license_writes(spotfire_emulator)] == ["DELETE"]


def test_remove_license_not_set_is_a_logged_no_op_that_reports_heritage(
    spotfire_conn_id, spotfire_emulator, capsys
):
    result = run(SpotfireRemoveGroupLicenseOperator(task_id="rm", group_id=SALES_EMEA, license_name=AUTHOR))
    text = logged(capsys)

    assert result["removed"] is False
    assert result["inherited_functions"] == [
        "openFromLibrary",
        "saveToLibrary",
        "authorVisualizations",
        "exportData",
    ]
    assert license_writes(spotfire_emulator) == []
    assert f"Group {SALES_EMEA} does not have license {AUTHOR} set explicitly; nothing to remove." in text
    assert f"Group {SALES_EMEA} still has license {AUTHOR} through membership in other groups" in text


def test_remove_license_set_explicitly_and_inherited_too(spotfire_conn_id, spotfire_emulator, hook, capsys):
    hook.set_group_license(AUTHOR, SALES_EMEA, ["openFile"])
    result = run(SpotfireRemoveGroupLicenseOperator(task_id="rm", group_id=SALES_EMEA, license_name=AUTHOR))
    assert (result["removed"], result["functions_before"]) == (True, ["openFile"])
    assert "openFile" not in result["inherited_functions"] and "exportData" in result["inherited_functions"]
    text = logged(capsys)
    assert f"Group {SALES_EMEA}: removed {AUTHOR} (functions openFile)" in text
    assert f"Group {SALES_EMEA} still has license {AUTHOR} through membership in other groups" in text


# ------------------------------------------------------------------------------------------- sync
DESIRED = {
    METRICS: ["viewMetrics", "editMetrics"],  # update: adds editMetrics
    AUTHOR: None,  # add with all functions
    WEBPLAYER: None,  # unchanged (Finance has all)
}


def test_sync_dry_run_reports_without_writing(spotfire_conn_id, spotfire_emulator):
    before = assignments(spotfire_emulator)
    diff = run(
        SpotfireSyncGroupLicensesOperator(task_id="sync", group_id=FINANCE, licenses=DESIRED, dry_run=True)
    )

    assert diff == {
        "group_id": FINANCE,
        "dry_run": True,
        "applied": False,
        "changes": [
            {
                "action": "update",
                "license": METRICS,
                "functions_before": ["viewMetrics"],
                "functions_after": ["viewMetrics", "editMetrics"],
                "functions_added": ["editMetrics"],
                "functions_removed": [],
            },
            {
                "action": "add",
                "license": AUTHOR,
                "functions_before": [],
                "functions_after": all_functions(AUTHOR),
                "functions_added": all_functions(AUTHOR),
                "functions_removed": [],
            },
        ],
        "unchanged": [WEBPLAYER],
        "unlisted_kept": [],
    }
    assert license_writes(spotfire_emulator) == []
    assert assignments(spotfire_emulator) == before


def test_sync_applies_the_smallest_change_set_and_second_run_writes_nothing(
    spotfire_conn_id, spotfire_emulator, capsys
):
    first = run(SpotfireSyncGroupLicensesOperator(task_id="sync", group_id=FINANCE, licenses=DESIRED))
    assert first["applied"] is True
    assert f"Group {FINANCE}: applied update {METRICS} [viewMetrics, editMetrics]" in logged(capsys)
    assert [(c["action"], c["license"]) for c in first["changes"]] == [("update", METRICS), ("add", AUTHOR)]
    assert assignments(spotfire_emulator)[FINANCE] == {
        WEBPLAYER: all_functions(WEBPLAYER),
        AUTHOR: all_functions(AUTHOR),
        METRICS: ["viewMetrics", "editMetrics"],
    }
    writes = license_writes(spotfire_emulator)
    assert [(w["method"], w["path"].rsplit("/", 3)[1]) for w in writes] == [("PUT", METRICS), ("PUT", AUTHOR)]

    second = run(SpotfireSyncGroupLicensesOperator(task_id="sync", group_id=FINANCE, licenses=DESIRED))
    assert second == {
        "group_id": FINANCE,
        "dry_run": False,
        "applied": False,
        "changes": [],
        "unchanged": [METRICS, AUTHOR, WEBPLAYER],
        "unlisted_kept": [],
    }
    assert len(license_writes(spotfire_emulator)) == 2  # zero writes in the second run
    assert f"Group {FINANCE} already matches: no license changes." in logged(capsys)


def test_sync_remove_unlisted(spotfire_conn_id, spotfire_emulator):
    kept = run(
        SpotfireSyncGroupLicensesOperator(task_id="s", group_id=FINANCE, licenses={METRICS: ["viewMetrics"]})
    )
    assert (kept["changes"], kept["unlisted_kept"]) == ([], [WEBPLAYER])

    diff = run(
        SpotfireSyncGroupLicensesOperator(
            task_id="s", group_id=FINANCE, licenses={METRICS: ["viewMetrics"]}, remove_unlisted=True
        )
    )
    assert diff["changes"] == [
        {
            "action": "remove",
            "license": WEBPLAYER,
            "functions_before": all_functions(WEBPLAYER),
            "functions_after": [],
            "functions_added": [],
            "functions_removed": all_functions(WEBPLAYER),
        }
    ]
    assert assignments(spotfire_emulator)[FINANCE] == {METRICS: ["viewMetrics"]}
    assert [w["method"] for w in license_writes(spotfire_emulator)] == ["DELETE"]


def test_sync_never_removes_inherited_licenses(spotfire_conn_id, spotfire_emulator):
    diff = run(
        SpotfireSyncGroupLicensesOperator(
            task_id="s", group_id=SALES_EMEA, licenses={EXTENSIONS: ["geoAnalytics"]}, remove_unlisted=True
        )
    )
    assert diff["changes"] == [] and diff["unchanged"] == [EXTENSIONS]
    assert license_writes(spotfire_emulator) == []


def test_sync_accepts_a_rendered_template_string(spotfire_conn_id, spotfire_emulator):
    rendered = str({METRICS: ["viewMetrics"], WEBPLAYER: None})  # Jinja renders to a Python repr
    diff = run(SpotfireSyncGroupLicensesOperator(task_id="s", group_id=FINANCE, licenses=rendered))
    assert diff["unchanged"] == [METRICS, WEBPLAYER]


def test_sync_typo_fails_before_any_write_and_lists_valid_names(spotfire_conn_id, spotfire_emulator):
    licenses = {
        METRICS: ["viewMetrics", "editMetrics"],  # valid: would be applied if validation came late
        "Spotfire.Dxp.webplayer": None,
        EXTENSIONS: ["geoAnalytics", "pythonDataFunction"],
    }
    with pytest.raises(SpotfireConfigurationError) as info:
        run(SpotfireSyncGroupLicensesOperator(task_id="s", group_id=FINANCE, licenses=licenses))
    message = str(info.value)
    assert message.startswith(
        "Unknown license 'Spotfire.Dxp.webplayer'. Did you mean 'Spotfire.Dxp.WebPlayer'?"
    )
    assert (
        f"Valid licenses: {', '.join(sorted([WEBPLAYER, AUTHOR, ANALYST, EXTENSIONS, METRICS]))}." in message
    )
    assert (
        f"License {EXTENSIONS!r} has no function 'pythonDataFunction'. Did you mean 'pythonDataFunctions'? "
        f"Its functions: {', '.join(all_functions(EXTENSIONS))}." in message
    )
    assert message.endswith("Nothing was changed; fix the names and run the task again.")
    assert license_writes(spotfire_emulator) == []


def test_unknown_function_in_set_operator(spotfire_conn_id, spotfire_emulator):
    op = SpotfireSetGroupLicenseOperator(
        task_id="set",
        group_id=FINANCE,
        license_name=METRICS,
        license_functions=["viewMetrics", "deleteMetrics"],
    )
    with pytest.raises(
        SpotfireConfigurationError,
        match=r"has no function 'deleteMetrics'\..*Its functions: viewMetrics, editMetrics\.",
    ):
        run(op)
    assert license_writes(spotfire_emulator) == []


def test_unknown_license_in_remove_operator(spotfire_conn_id, spotfire_emulator):
    with pytest.raises(SpotfireConfigurationError, match=r"Unknown license 'Metrics'\..*Valid licenses: "):
        run(SpotfireRemoveGroupLicenseOperator(task_id="rm", group_id=FINANCE, license_name="Metrics"))
    assert license_writes(spotfire_emulator) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda g: SpotfireSyncGroupLicensesOperator(task_id="s", group_id=g, licenses={METRICS: None}),
        lambda g: SpotfireSetGroupLicenseOperator(task_id="s", group_id=g, license_name=METRICS),
        lambda g: SpotfireRemoveGroupLicenseOperator(task_id="s", group_id=g, license_name=METRICS),
    ],
    ids=["sync", "set", "remove"],
)
def test_unknown_group_fails_before_any_write(spotfire_conn_id, spotfire_emulator, make):
    with pytest.raises(
        SpotfireBadRequestError, match="Spotfire group 'Finance' does not exist or is not a valid group id"
    ):
        run(make("Finance"))
    assert license_writes(spotfire_emulator) == []


def test_reader_client_is_told_it_lacks_the_write_scope(conn_as, spotfire_emulator):
    op = SpotfireSyncGroupLicensesOperator(
        task_id="s", group_id=FINANCE, licenses=DESIRED, spotfire_conn_id=conn_as("licenses-reader")
    )
    with pytest.raises(
        SpotfirePermissionError, match=r"API client 'licenses-reader' lacks the scope api\.licenses\.write"
    ):
        run(op)
    assert license_writes(spotfire_emulator) == []

    # a dry run only reads, which the reader may do
    op.is_dry_run = True
    assert len(run(op)["changes"]) == 2


def test_non_admin_client_is_told_it_is_not_an_administrator(conn_as, spotfire_emulator):
    op = SpotfireSyncGroupLicensesOperator(
        task_id="s", group_id=FINANCE, licenses=DESIRED, spotfire_conn_id=conn_as("licenses-writer")
    )
    with pytest.raises(
        SpotfirePermissionError, match="API client 'licenses-writer' is not a Spotfire administrator"
    ):
        run(op)
    assert [w["status"] for w in license_writes(spotfire_emulator)] == [403]  # stopped at the first write
    assert assignments(spotfire_emulator)[FINANCE][METRICS] == ["viewMetrics"]


def test_sync_failing_midway_says_what_was_applied_and_a_rerun_finishes(spotfire_conn_id, spotfire_emulator):
    spotfire_emulator.set_config(retry_after=0)
    path = f"/spotfire/api/rest/licenses/v1/{AUTHOR}/groups/"
    spotfire_emulator.inject_faults(
        "503", "503", "503", method="PUT", path_prefix=path
    )  # > FAST_RETRIES attempts

    with pytest.raises(SpotfireServerError) as info:
        run(SpotfireSyncGroupLicensesOperator(task_id="s", group_id=FINANCE, licenses=DESIRED))
    message = str(info.value)
    assert f"1 of 2 license changes were applied to group {FINANCE} before this failure" in message
    assert f"(done: update {METRICS} [viewMetrics, editMetrics]; not done: add {AUTHOR} [" in message

    diff = run(SpotfireSyncGroupLicensesOperator(task_id="s", group_id=FINANCE, licenses=DESIRED))
    assert [(c["action"], c["license"]) for c in diff["changes"]] == [("add", AUTHOR)]


# ------------------------------------------------------------------------------------------- pure helpers
CATALOGUE = {
    "L": License("L", "Ell", (LicenseFunction("a"), LicenseFunction("b"), LicenseFunction("c"))),
    "M": License("M", "Em", (LicenseFunction("x"),)),
}


def test_validate_resolves_none_to_all_functions_in_catalogue_order():
    assert validate_license_spec(CATALOGUE, {"L": ("c", "a"), "M": None}) == {"L": ("a", "c"), "M": ("x",)}


def test_plan_ignores_order_and_sends_empty_put_for_whole_license():
    plan = plan_license_sync(
        {"L": ("c", "a"), "M": ("x",)},
        {"L": ("a", "c"), "M": ("x",), "N": ("n1", "n2")},
        all_functions={"N": ("n1", "n2")},
    )
    assert plan.unchanged == ("L", "M")
    (change,) = plan.changes
    assert (change.action, change.license, change.put_functions) == ("add", "N", ())


def test_plan_update_of_subset_sends_the_names():
    plan = plan_license_sync({"L": ("a",)}, {"L": ("a", "b")}, all_functions={"L": ("a", "b", "c")})
    assert plan.changes[0].put_functions == ("a", "b")
    assert plan.expected == {"L": ("a", "b")}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ([], None),
        ("", None),
        (["a", "a", " b "], ("a", "b")),
        ('["a"]', ("a",)),
        ("['a', 'b']", ("a", "b")),
    ],
)
def test_normalize_functions(value, expected):
    assert normalize_functions(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("export Data!", "is not a function name or a comma-separated list of names"),
        ({"a": 1}, "must be a list of license function names or None"),
        (["a", 3], "must contain non-empty function names"),
    ],
)
def test_normalize_functions_rejects_bad_shapes(value, message):
    with pytest.raises(SpotfireConfigurationError, match=message):
        normalize_functions(value)


def test_normalize_license_spec_rejects_non_mappings():
    with pytest.raises(
        SpotfireConfigurationError, match="licenses must map license names to lists of function"
    ):
        normalize_license_spec([METRICS])
    with pytest.raises(
        SpotfireConfigurationError, match=r"licenses\['L'\] must contain non-empty function names"
    ):
        normalize_license_spec({"L": [""]})
