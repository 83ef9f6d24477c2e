"""License management API v1 through SpotfireHook / SpotfireAsyncHook, over real HTTP against the emulator."""

from __future__ import annotations

import dataclasses
import json

import pytest

from airflow_provider_spotfire._http import HttpResponse
from airflow_provider_spotfire.api import scopes as S
from airflow_provider_spotfire.api.licenses import (
    License,
    LicenseFunction,
    build_get_user_licenses,
    build_list_licenses,
    build_remove_group_license,
    build_set_group_license,
    parse_licenses,
)
from airflow_provider_spotfire.exceptions import (
    SpotfireBadRequestError,
    SpotfireConfigurationError,
    SpotfireError,
    SpotfirePermissionError,
)
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook

from .conftest import (
    ALICE,
    ANALYST,
    AUTHOR,
    BOB,
    CAROL,
    EXTENSIONS,
    FAST_RETRIES,
    FINANCE,
    METRICS,
    SALES,
    SALES_EMEA,
    SALES_NORDICS,
    UPLOADERS,
    WEBPLAYER,
    all_functions,
    assignments,
    license_requests,
    license_writes,
)

EVERYONE_WEBPLAYER = ["openFromLibrary", "exportImage", "print"]
SALES_AUTHOR = ["openFromLibrary", "saveToLibrary", "authorVisualizations", "exportData"]


def by_name(licenses: list[License]) -> dict[str, list[str]]:
    return {lic.name: list(lic.function_names) for lic in licenses}


# ------------------------------------------------------------------------------------------- reads
def test_list_licenses_returns_the_typed_catalogue(hook, spotfire_emulator):
    catalogue = hook.list_licenses()

    assert [lic.name for lic in catalogue] == [WEBPLAYER, AUTHOR, ANALYST, EXTENSIONS, METRICS]
    webplayer = catalogue[0]
    assert webplayer.display_name == "Spotfire Consumer"
    assert list(webplayer.function_names) == all_functions(WEBPLAYER)
    assert webplayer.functions[-1] == LicenseFunction("useExternalActions", "Use External Actions")
    with pytest.raises(dataclasses.FrozenInstanceError):
        webplayer.name = "changed"  # type: ignore[misc]
    (entry,) = license_requests(spotfire_emulator)
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/spotfire/api/rest/licenses/v1", 200)
    assert entry["scopes"] == [S.LICENSES_READ]  # read preferred over write


def test_license_functions_lists_every_function_of_a_license(hook):
    functions = hook.get_license_functions(METRICS)
    assert functions == [
        LicenseFunction("viewMetrics", "View Metrics"),
        LicenseFunction("editMetrics", "Edit Metrics"),
    ]


def test_group_licenses_explicit_and_through_nested_groups(hook, spotfire_emulator):
    # Sales Nordics ⊂ Sales EMEA ⊂ Sales: nothing explicit, everything inherited.
    assert hook.get_group_licenses(SALES_NORDICS) == []
    assert by_name(hook.get_group_licenses(SALES_NORDICS, including_heritage=True)) == {
        AUTHOR: SALES_AUTHOR,  # from Sales, two levels up
        EXTENSIONS: ["geoAnalytics"],  # from Sales EMEA
    }
    assert by_name(hook.get_group_licenses(SALES_EMEA)) == {EXTENSIONS: ["geoAnalytics"]}
    assert by_name(hook.get_group_licenses(SALES_EMEA, including_heritage=True)) == {
        AUTHOR: SALES_AUTHOR,
        EXTENSIONS: ["geoAnalytics"],
    }
    queries = [e["query"] for e in license_requests(spotfire_emulator)]
    assert queries == ["includingHeritage=false", "includingHeritage=true"] * 2


def test_group_license_functions_explicit_and_inherited(hook):
    assert hook.get_group_license_functions(AUTHOR, SALES_NORDICS) == []
    inherited = hook.get_group_license_functions(AUTHOR, SALES_NORDICS, including_heritage=True)
    assert [f.name for f in inherited] == SALES_AUTHOR
    assert [f.name for f in hook.get_group_license_functions(METRICS, FINANCE)] == ["viewMetrics"]


def test_user_licenses_are_the_union_over_all_groups(hook):
    # alice: Sales Nordics (-> EMEA -> Sales), Airflow Uploaders, Administrator, and Everyone
    assert by_name(hook.get_user_licenses(ALICE)) == {
        WEBPLAYER: EVERYONE_WEBPLAYER,
        AUTHOR: SALES_AUTHOR,
        ANALYST: all_functions(ANALYST),
        EXTENSIONS: all_functions(EXTENSIONS),  # Administrator has all; Sales EMEA's geoAnalytics is included
    }
    assert by_name(hook.get_user_licenses(CAROL)) == {WEBPLAYER: EVERYONE_WEBPLAYER}


def test_user_license_functions(hook):
    assert [f.name for f in hook.get_user_license_functions(WEBPLAYER, BOB)] == all_functions(WEBPLAYER)
    assert [f.name for f in hook.get_user_license_functions(METRICS, CAROL)] == []


async def test_async_hook_reads_match_the_sync_hook(hook, spotfire_conn_id):
    ahook = SpotfireAsyncHook(spotfire_conn_id, retry_policy=FAST_RETRIES)
    assert await ahook.list_licenses() == hook.list_licenses()
    assert await ahook.get_license_functions(WEBPLAYER) == hook.get_license_functions(WEBPLAYER)
    assert await ahook.get_group_licenses(SALES_NORDICS, True) == hook.get_group_licenses(SALES_NORDICS, True)
    assert await ahook.get_group_license_functions(AUTHOR, SALES_EMEA, True) == (
        hook.get_group_license_functions(AUTHOR, SALES_EMEA, True)
    )
    assert await ahook.get_user_licenses(ALICE) == hook.get_user_licenses(ALICE)
    assert await ahook.get_user_license_functions(AUTHOR, ALICE) == hook.get_user_license_functions(
        AUTHOR, ALICE
    )
    with pytest.raises(SpotfireBadRequestError, match="Spotfire user 'bob' does not exist"):
        await ahook.get_user_licenses("bob")


def test_parsing_is_forgiving_about_extra_properties(hook, spotfire_emulator):
    spotfire_emulator.set_config(extra_response_fields=True)
    assert by_name(hook.get_group_licenses(FINANCE)) == {
        WEBPLAYER: all_functions(WEBPLAYER),
        METRICS: ["viewMetrics"],
    }


def test_parsers_accept_other_orders_missing_fields_and_skip_nameless_entries():
    body = [
        {
            "licenseFunctions": [{"displayName": "X", "name": "x", "new": 1}, {"displayName": "no name"}],
            "name": "A",
        },
        {"displayName": "nameless license"},
        "not an object",
        {"name": "B", "licenseFunctions": None},
        {"name": "C", "licenseFunctions": ["bare"]},
    ]
    parsed = parse_licenses(HttpResponse(200, {}, json.dumps(body).encode()))
    assert parsed == [
        License("A", "", (LicenseFunction("x", "X"),)),
        License("B", "", ()),
        License("C", "", (LicenseFunction("bare", ""),)),
    ]
    assert parse_licenses(HttpResponse(200, {}, b"")) == []
    with pytest.raises(SpotfireError, match="expected an array"):
        parse_licenses(HttpResponse(200, {}, b'{"error": "html login page?"}'))
    with pytest.raises(SpotfireError, match="not JSON"):
        parse_licenses(HttpResponse(200, {}, b"<html>"))


# ------------------------------------------------------------------------------------------- writes
def test_set_group_license_sends_a_json_array_of_function_names(hook, spotfire_emulator):
    hook.set_group_license(METRICS, UPLOADERS, ["editMetrics", "viewMetrics"])

    assert assignments(spotfire_emulator)[UPLOADERS] == {METRICS: ["viewMetrics", "editMetrics"]}
    (put,) = license_writes(spotfire_emulator)
    assert put["path"] == f"/spotfire/api/rest/licenses/v1/{METRICS}/groups/{UPLOADERS}"
    assert (put["status"], put["content_type"], put["scopes"]) == (
        204,
        "application/json",
        [S.LICENSES_WRITE],
    )
    assert build_set_group_license(METRICS, UPLOADERS, ["editMetrics"]).json == ["editMetrics"]


def test_set_group_license_without_functions_enables_all(hook, spotfire_emulator):
    hook.set_group_license(EXTENSIONS, SALES_EMEA)  # replaces Sales EMEA's geoAnalytics-only assignment
    assert assignments(spotfire_emulator)[SALES_EMEA] == {EXTENSIONS: all_functions(EXTENSIONS)}
    assert build_set_group_license(EXTENSIONS, SALES_EMEA).json == []


def test_remove_group_license_leaves_inherited_licenses(hook, spotfire_emulator):
    hook.set_group_license(AUTHOR, SALES_EMEA, ["openFromLibrary"])
    hook.remove_group_license(AUTHOR, SALES_EMEA)

    assert assignments(spotfire_emulator)[SALES_EMEA] == {EXTENSIONS: ["geoAnalytics"]}
    inherited = hook.get_group_license_functions(AUTHOR, SALES_EMEA, including_heritage=True)
    assert [f.name for f in inherited] == SALES_AUTHOR  # still there through Sales
    assert [(e["method"], e["status"]) for e in license_writes(spotfire_emulator)] == [
        ("PUT", 204),
        ("DELETE", 204),
    ]


def test_reads_and_writes_are_retried_as_idempotent(hook, spotfire_emulator):
    spotfire_emulator.set_config(retry_after=0)
    spotfire_emulator.inject_faults("503", method="GET", path_prefix="/spotfire/api/rest/licenses/")
    spotfire_emulator.inject_faults("drop_after", method="PUT", path_prefix="/spotfire/api/rest/licenses/")

    assert len(hook.list_licenses()) == 5
    hook.set_group_license(METRICS, UPLOADERS, ["viewMetrics"])  # the first PUT was applied, its answer lost

    assert assignments(spotfire_emulator)[UPLOADERS] == {METRICS: ["viewMetrics"]}
    statuses = [(e["method"], e["status"], e["fault"]) for e in license_requests(spotfire_emulator)]
    assert statuses == [
        ("GET", 503, "503"),
        ("GET", 200, None),
        ("PUT", None, "drop_after"),
        ("PUT", 204, None),
    ]
    for build in (
        build_list_licenses,
        lambda: build_get_user_licenses(ALICE),
        lambda: build_remove_group_license(METRICS, SALES),
    ):
        assert build().idempotent


# ------------------------------------------------------------------------------------------- path segments
def test_path_segments_are_url_quoted(hook, spotfire_emulator):
    odd = "Odd/License ?#%"
    with pytest.raises(SpotfireBadRequestError) as info:
        hook.get_license_functions(odd)
    # the emulator received the whole name as one segment (an unquoted "/" would not match the route)
    assert info.value.description == f"Unknown license: {odd}"
    assert str(info.value).startswith(f"License {odd!r} does not exist on this server")
    assert (
        build_set_group_license(odd, "g 1").path == "rest/licenses/v1/Odd%2FLicense%20%3F%23%25/groups/g%201"
    )


@pytest.mark.parametrize("bad", ["", "  ", ".", ".."])
def test_empty_or_dot_segments_are_refused_before_any_request(hook, spotfire_emulator, bad):
    with pytest.raises(SpotfireConfigurationError, match="group id must be a non-empty name or id"):
        hook.get_group_licenses(bad)
    assert license_requests(spotfire_emulator) == []


# ------------------------------------------------------------------------------------------- errors
def test_unknown_group_is_named_with_a_hint_about_ids(hook):
    with pytest.raises(SpotfireBadRequestError) as info:
        hook.get_group_licenses("Sales")
    message = str(info.value)
    assert message.startswith("Spotfire group 'Sales' does not exist or is not a valid group id.")
    assert "ids are GUIDs" in message and "a group name is not accepted" in message
    assert "Unknown group ID: Sales" in message  # the server's own words are kept


def test_unknown_user_is_named(hook):
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(SpotfireBadRequestError, match=f"Spotfire user '{missing}' does not exist") as info:
        hook.get_user_licenses(missing)
    assert "GUIDs" not in str(info.value)  # it is a GUID, just an unknown one


def test_unknown_license_for_a_group(hook):
    with pytest.raises(SpotfireBadRequestError) as info:
        hook.get_group_license_functions("Spotfire.Dxp.Nope", SALES)
    assert str(info.value).startswith(
        f"Spotfire rejected license 'Spotfire.Dxp.Nope' for group '{SALES}': the license name or the group id"
    )
    assert "Unknown license: Spotfire.Dxp.Nope" in str(info.value)


def test_reader_client_can_read_but_not_write(hook_as, spotfire_emulator):
    reader = hook_as("licenses-reader")
    assert by_name(reader.get_group_licenses(FINANCE))[METRICS] == ["viewMetrics"]
    with pytest.raises(SpotfirePermissionError) as info:
        reader.set_group_license(METRICS, UPLOADERS, ["viewMetrics"])
    assert str(info.value).startswith(
        "API client 'licenses-reader' lacks the scope api.licenses.write, "
        "which changing license assignments needs."
    )
    assert "-Sapi.licenses.write" in str(info.value)
    assert license_writes(spotfire_emulator) == []  # refused by the token endpoint, nothing was sent
    assert UPLOADERS not in assignments(spotfire_emulator)


def test_non_administrator_client_is_told_so(hook_as, spotfire_emulator):
    writer = hook_as("licenses-writer")
    with pytest.raises(SpotfirePermissionError) as info:
        writer.remove_group_license(METRICS, FINANCE)
    message = str(info.value)
    assert message.startswith("API client 'licenses-writer' is not a Spotfire administrator")
    assert "member of the Administrator group" in message and "it has the scope api.licenses.write" in message
    assert info.value.status_code == 403
    assert assignments(spotfire_emulator)[FINANCE][METRICS] == ["viewMetrics"]
