"""spotfire:// asset URIs: the factory and the normaliser registered in the provider info."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from airflow_provider_spotfire.assets import create_asset, library_item_uri, sanitize_uri


def test_factory_builds_a_normalised_uri():
    asset = create_asset(conn_id="spotfire_default", library_path="/Airflow/Reports//sales/")
    assert asset.uri == "spotfire://spotfire_default/Airflow/Reports/sales"
    assert library_item_uri("prod", "/A b/c") == "spotfire://prod/A%20b/c"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("spotfire://c/Airflow//Reports/sales/", "spotfire://c/Airflow/Reports/sales"),
        ("spotfire://c/A%20b/c", "spotfire://c/A%20b/c"),
    ],
)
def test_sanitize_normalises(uri, expected):
    assert sanitize_uri(urlsplit(uri)).geturl() == expected


@pytest.mark.parametrize(
    "uri", ["spotfire:///Airflow/x", "spotfire://conn", "spotfire://conn/", "spotfire://c/x?y=1"]
)
def test_sanitize_rejects_incomplete_uris(uri):
    with pytest.raises(ValueError, match="spotfire://"):
        sanitize_uri(urlsplit(uri))


def test_airflow_uses_our_normaliser_for_the_scheme():
    from airflow.providers.common.compat.sdk import Asset

    assert Asset("spotfire://c/Airflow//x/").uri == "spotfire://c/Airflow/x"
    with pytest.raises(ValueError):
        Asset("spotfire://c")
