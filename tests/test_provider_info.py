"""The provider info Airflow reads through the entry point is complete and truthful."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import pkgutil
from pathlib import Path

import pytest

import airflow_provider_spotfire
from airflow_provider_spotfire import get_provider_info


def test_entry_point_returns_provider_info_of_this_distribution():
    eps = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.value.startswith("airflow_provider_spotfire")]
    assert len(ours) == 1
    info = ours[0].load()()
    assert info["package-name"] == "airflow-provider-spotfire"
    assert importlib.metadata.version("airflow-provider-spotfire") in info["versions"]


def test_provider_info_matches_airflow_schema():
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def _dotted(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_named_module_and_class_imports():
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in info["extra-links"]:
        _dotted(link)
    for conn_type in info["connection-types"]:
        hook = _dotted(conn_type["hook-class-name"])
        assert hook.conn_type == conn_type["connection-type"] == "spotfire"
        assert hook.hook_name == conn_type["hook-name"] == "Spotfire"
        assert hook.conn_name_attr == "spotfire_conn_id"
        assert hook.default_conn_name == "spotfire_default"
    for asset in info["asset-uris"]:
        _dotted(asset["handler"])
        _dotted(asset["factory"])


def _public_classes(package: str, base_name: str) -> set[str]:
    found = set()
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_") or mod.name in ("base", "events"):
            continue
        module = importlib.import_module(f"{package}.{mod.name}")
        for name, obj in inspect.getmembers(module, inspect.isclass):
            ours = obj.__module__ == module.__name__ and not name.startswith("_")
            if ours and any(b.__name__ == base_name for b in inspect.getmro(obj)):
                found.add(module.__name__)
    return found


def test_every_public_operator_sensor_trigger_module_is_listed():
    info = get_provider_info()
    listed = {
        s: {m for e in info[s] for m in e["python-modules"]} for s in ("operators", "sensors", "triggers")
    }
    assert _public_classes("airflow_provider_spotfire.operators", "BaseOperator") <= listed["operators"]
    assert _public_classes("airflow_provider_spotfire.sensors", "BaseSensorOperator") <= listed["sensors"]
    assert _public_classes("airflow_provider_spotfire.triggers", "BaseTrigger") <= listed["triggers"]


AIRFLOW_VERSION = tuple(int(p) for p in importlib.metadata.version("apache-airflow").split(".")[:2])


@pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 2), reason="Airflow < 3.2 does not render conn-fields from provider info"
)
def test_connection_form_fields_render_from_provider_info():
    """What the Airflow 3.3 UI renders comes from conn-fields / ui-field-behaviour."""
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    widgets = pm.connection_form_widgets
    for field in ("grant_type", "refresh_token", "scopes", "client_auth_method", "verify", "timeout"):
        assert f"extra__spotfire__{field}" in widgets, field
    assert widgets["extra__spotfire__refresh_token"].is_sensitive
    behaviour = pm.field_behaviours["spotfire"]
    assert {"schema", "extra", "port"} <= set(behaviour["hidden_fields"])
    assert behaviour["relabeling"]["login"] == "Client ID"
    assert airflow_provider_spotfire.__version__


def test_older_airflow_keeps_the_extra_field_visible():
    from airflow_provider_spotfire.hooks.spotfire import SpotfireHook

    behaviour = SpotfireHook.get_ui_field_behaviour()
    assert "extra" not in behaviour["hidden_fields"] and "schema" in behaviour["hidden_fields"]
    assert behaviour["relabeling"]["password"] == "Client secret"
