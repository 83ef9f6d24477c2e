"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_spotfire._version import __version__

INTEGRATION = "Spotfire"


def _field(label: str, description: str, kind: str, **schema: Any) -> dict[str, Any]:
    """One connection-form field: a nullable JSON-schema ``kind`` with ``schema`` extras."""
    return {"label": label, "description": description, "schema": {"type": [kind, "null"], **schema}}


CONNECTION_FIELDS: dict[str, Any] = {
    "grant_type": _field(
        "Grant type",
        "client_credentials for an API client with profile 'other'; refresh_token for a web/native "
        "client acting for a user (bootstrap the token with `airflow-spotfire login`).",
        "string",
        enum=["client_credentials", "refresh_token"],
        default="client_credentials",
    ),
    "refresh_token": _field(
        "Refresh token",
        "Only for grant type refresh_token. Written by `airflow-spotfire login`.",
        "string",
        format="password",
    ),
    "scopes": _field(
        "Scopes (override)",
        "Space-separated. Leave empty: each call asks for exactly the scope its API needs "
        "(api.rest.library.upload, api.rest.automation-services-job.execute, api.licenses.read, "
        "api.licenses.write).",
        "string",
    ),
    "client_auth_method": _field(
        "Client authentication",
        "How the client id/secret reach the token endpoint: HTTP Basic (Spotfire's documented way) "
        "or in the form body.",
        "string",
        enum=["client_secret_basic", "client_secret_post"],
        default="client_secret_basic",
    ),
    "verify": _field(
        "Verify TLS",
        "true (default), false, or the path of a CA bundle on the workers.",
        "string",
        default="true",
    ),
    "timeout": _field("Timeout (seconds)", "Per HTTP request (connect and read).", "number", default=60),
    "poll_interval": _field(
        "Poll interval (seconds)",
        "Seconds between job status polls for the operators and sensors that wait, unless a task "
        "passes its own poll_interval (or poke_interval / poll_schedule). Empty: 15 s for "
        "Automation Services jobs, 5 s for upload jobs.",
        "number",
    ),
    "context_path": _field(
        "Context path", "Where Spotfire Server is mounted on the host.", "string", default="/spotfire"
    ),
    "allow_insecure_http": _field(
        "Allow plain http to non-loopback hosts",
        "Off by default: http is accepted only for localhost/127.0.0.1/[::1].",
        "boolean",
        default=False,
    ),
}
"""The ``spotfire`` connection's extra fields, as the connection form renders them (Airflow 3.2+)."""

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "extra", "port"],
    "relabeling": {
        "host": "Spotfire Server URL",
        "login": "Client ID",
        "password": "Client secret",
    },
    "placeholders": {
        "host": "https://spotfire.example.com:8443",
        "login": "client id printed by register-api-client",
        "password": "client secret printed by register-api-client",
        "scopes": "api.rest.library.upload api.licenses.read",
        "verify": "true | false | /etc/ssl/certs/corp-ca.pem",
        "refresh_token": "written by: airflow-spotfire login --conn-id spotfire_default",
    },
}


def _modules(*modules: str) -> list[dict[str, Any]]:
    """One integration entry naming our modules (relative to the package)."""
    return [
        {
            "integration-name": INTEGRATION,
            "python-modules": [f"airflow_provider_spotfire.{m}" for m in modules],
        }
    ]


def get_provider_info() -> dict[str, Any]:
    """Return the provider info dict (Airflow's provider_info schema)."""
    return {
        "package-name": "airflow-provider-spotfire",
        "name": "Spotfire",
        "description": "Spotfire Server: library upload (SBDF), Automation Services and license management.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.tibco.com/products/spotfire-server",
                "tags": ["service"],
            }
        ],
        "hooks": _modules("hooks.spotfire"),
        "operators": _modules("operators.library", "operators.automation", "operators.licenses"),
        "sensors": _modules("sensors.library", "sensors.automation"),
        "triggers": _modules("triggers.library", "triggers.automation"),
        "transfers": [
            {
                "source-integration-name": "Common SQL",
                "target-integration-name": INTEGRATION,
                "python-module": "airflow_provider_spotfire.transfers.sql_to_spotfire",
            }
        ],
        "extra-links": [
            "airflow_provider_spotfire.links.SpotfireLibraryItemLink",
            "airflow_provider_spotfire.links.SpotfireAutomationJobLink",
        ],
        "asset-uris": [
            {
                "schemes": ["spotfire"],
                "handler": "airflow_provider_spotfire.assets.sanitize_uri",
                "factory": "airflow_provider_spotfire.assets.create_asset",
            }
        ],
        "connection-types": [
            {
                "connection-type": "spotfire",
                "hook-class-name": "airflow_provider_spotfire.hooks.spotfire.SpotfireHook",
                "hook-name": "Spotfire",
                "conn-fields": CONNECTION_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
