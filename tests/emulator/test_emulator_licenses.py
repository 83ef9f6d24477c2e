"""License management API v1 of the emulator."""

from __future__ import annotations

import pytest

from airflow_provider_spotfire.emulator import seed

from .conftest import LICENSES

WEB = seed.LIC_WEBPLAYER
BA = seed.LIC_BUSINESS_AUTHOR
EXT = seed.LIC_EXTENSIONS


def names(items: list[dict]) -> list[str]:
    return [i["name"] for i in items]


def test_list_all_licenses(airflow):
    for path in (LICENSES, LICENSES + "/"):
        resp = airflow.get(path)
        assert resp.status_code == 200
        body = resp.json()
        assert names(body) == list(seed.LICENSES)
        web = body[0]
        assert web["displayName"] == "Spotfire Consumer"
        assert {"name": "useExternalActions", "displayName": "Use External Actions"} in web[
            "licenseFunctions"
        ]
    lic = {x["name"]: x for x in airflow.get(LICENSES).json()}
    assert lic[seed.LIC_PROFESSIONAL]["displayName"] == "Spotfire Analyst"


def test_license_functions(airflow):
    resp = airflow.get(f"{LICENSES}/{EXT}/functions")
    assert names(resp.json()) == [f for f, _ in seed.LICENSES[EXT][1]]
    resp = airflow.get(f"{LICENSES}/Spotfire.Dxp.Nope/functions")
    assert resp.status_code == 400
    assert (
        resp.json()["error"]["code"] == "invalid_request"
        and "Spotfire.Dxp.Nope" in resp.json()["error"]["description"]
    )


def test_group_licenses_and_heritage(airflow):
    nordics = seed.GROUP_SALES_NORDICS
    assert airflow.get(f"{LICENSES}/groups/{nordics}").json() == []
    inherited = airflow.get(f"{LICENSES}/groups/{nordics}", params={"includingHeritage": "true"}).json()
    assert names(inherited) == [BA, EXT]
    assert names(next(x for x in inherited if x["name"] == EXT)["licenseFunctions"]) == ["geoAnalytics"]
    explicit = airflow.get(
        f"{LICENSES}/groups/{seed.GROUP_SALES_EMEA}", params={"includingHeritage": "false"}
    )
    assert names(explicit.json()) == [EXT]
    fns = airflow.get(f"{LICENSES}/{BA}/groups/{nordics}", params={"includingHeritage": True}).json()
    assert names(fns) == ["openFromLibrary", "saveToLibrary", "authorVisualizations", "exportData"]
    assert airflow.get(f"{LICENSES}/{BA}/groups/{nordics}").json() == []
    assert airflow.get(f"{LICENSES}/groups/not-a-group").status_code == 400
    assert airflow.get(f"{LICENSES}/{BA}/groups/not-a-group").status_code == 400
    assert airflow.get(f"{LICENSES}/Nope/groups/{nordics}").status_code == 400
    assert (
        airflow.get(f"{LICENSES}/groups/{nordics}", params={"includingHeritage": "perhaps"}).status_code
        == 400
    )


def test_user_licenses(airflow):
    alice = {
        x["name"]: names(x["licenseFunctions"])
        for x in airflow.get(f"{LICENSES}/users/{seed.USER_ALICE}").json()
    }
    # Everyone + Sales (via Sales Nordics ⊂ Sales EMEA ⊂ Sales) + Administrator
    assert set(alice) == {WEB, BA, seed.LIC_PROFESSIONAL, EXT}
    assert alice[WEB] == ["openFromLibrary", "exportImage", "print"]
    assert alice[EXT] == [f for f, _ in seed.LICENSES[EXT][1]]
    bob = airflow.get(f"{LICENSES}/{WEB}/users/{seed.USER_BOB}").json()
    assert names(bob) == [f for f, _ in seed.LICENSES[WEB][1]]  # Finance has all Consumer functions
    carol = airflow.get(f"{LICENSES}/users/{seed.USER_CAROL}").json()
    assert names(carol) == [WEB]
    # API clients are users too
    client = airflow.get(f"{LICENSES}/users/{seed.CLIENT_USER_IDS['airflow']}").json()
    assert seed.LIC_PROFESSIONAL in names(client)
    resp = airflow.get(f"{LICENSES}/users/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 400 and "user" in resp.json()["error"]["description"].lower()
    assert airflow.get(f"{LICENSES}/Nope/users/{seed.USER_BOB}").status_code == 400


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (["viewMetrics"], ["viewMetrics"]),
        ([{"name": "editMetrics", "displayName": "Edit Metrics"}], ["editMetrics"]),
        ([], ["viewMetrics", "editMetrics"]),
        (None, ["viewMetrics", "editMetrics"]),
    ],
)
def test_set_license_for_group(emu, airflow, body, expected):
    group = seed.GROUP_SALES
    resp = airflow.put(f"{LICENSES}/{seed.LIC_METRICS}/groups/{group}", json=body)
    assert resp.status_code == 204, resp.text
    fns = airflow.get(f"{LICENSES}/{seed.LIC_METRICS}/groups/{group}").json()
    assert names(fns) == expected
    # heritage: members of Sales see it when includingHeritage=true
    inherited = airflow.get(
        f"{LICENSES}/groups/{seed.GROUP_SALES_NORDICS}", params={"includingHeritage": "true"}
    )
    assert seed.LIC_METRICS in names(inherited.json())
    assert emu.inspect()["licenses"]["assignments"][group][seed.LIC_METRICS] == expected


def test_set_license_errors(airflow):
    url = f"{LICENSES}/{seed.LIC_METRICS}/groups/{seed.GROUP_SALES}"
    resp = airflow.put(url, json=["viewMetrics", "flyToTheMoon"])
    assert resp.status_code == 400 and "flyToTheMoon" in resp.json()["error"]["description"]
    assert airflow.put(f"{LICENSES}/Nope/groups/{seed.GROUP_SALES}", json=[]).status_code == 400
    resp = airflow.put(f"{LICENSES}/{seed.LIC_METRICS}/groups/bad-group", json=[])
    assert resp.status_code == 400 and "bad-group" in resp.json()["error"]["description"]
    assert airflow.put(url, json={"unexpected": 1}).status_code == 400


def test_remove_license(airflow):
    url = f"{LICENSES}/{BA}/groups/{seed.GROUP_SALES}"
    assert airflow.delete(url).status_code == 204
    assert airflow.get(url).json() == []
    assert airflow.delete(url).status_code == 204  # no-op when not set
    assert airflow.delete(f"{LICENSES}/{BA}/groups/nope").status_code == 400


def test_writes_need_administrator_and_write_scope(api):
    url = f"{LICENSES}/{WEB}/groups/{seed.GROUP_SALES}"
    writer = api("licenses-writer")  # has api.licenses.write but is not an Administrator
    for resp in (writer.put(url, json=[]), writer.delete(url)):
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "not_authorized"
        assert "Administrator" in resp.json()["error"]["description"]
    reader = api("licenses-reader")
    resp = reader.put(url, json=[])
    assert resp.status_code == 403 and seed.SCOPE_LICENSES_WRITE in resp.json()["error"]["description"]
    assert 'error="insufficient_scope"' in resp.headers["www-authenticate"]
    assert reader.get(LICENSES).status_code == 200
    # an Administrator token holding only the read scope cannot write either
    assert api("airflow", scope=seed.SCOPE_LICENSES_READ).put(url, json=[]).status_code == 403


def test_reads_accept_write_scope_alone(api):
    client = api("licenses-writer", scope=seed.SCOPE_LICENSES_WRITE)
    assert client.get(LICENSES).status_code == 200
    assert api("library-only").get(LICENSES).status_code == 403
