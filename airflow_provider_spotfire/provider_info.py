"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

INTEGRATION = "Spotfire"


def get_provider_info() -> dict[str, Any]:
    """Return the provider info dict (Airflow's provider_info schema)."""
    from airflow_provider_spotfire import __version__

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
        "hooks": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_spotfire.hooks.spotfire"]}
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_spotfire.operators.library",
                    "airflow_provider_spotfire.operators.automation",
                    "airflow_provider_spotfire.operators.licenses",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_spotfire.sensors.library",
                    "airflow_provider_spotfire.sensors.automation",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_spotfire.triggers.library",
                    "airflow_provider_spotfire.triggers.automation",
                ],
            }
        ],
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
                "conn-fields": {
                    "grant_type": {
                        "label": "Grant type",
                        "description": "client_credentials for an API client with profile 'other'; "
                        "refresh_token for a web/native client acting for a user "
                        "(bootstrap the token with `airflow-spotfire login`).",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["client_credentials", "refresh_token"],
                            "default": "client_credentials",
                        },
                    },
                    "refresh_token": {
                        "label": "Refresh token",
                        "description": "Only for grant type refresh_token. Written by `airflow-spotfire login`.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "scopes": {
                        "label": "Scopes (override)",
                        "description": "Space-separated. Leave empty: each call asks for exactly the scope "
                        "its API needs (api.rest.library.upload, api.rest.automation-services-job.execute, "
                        "api.licenses.read, api.licenses.write).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_auth_method": {
                        "label": "Client authentication",
                        "description": "How the client id/secret reach the token endpoint: HTTP Basic "
                        "(Spotfire's documented way) or in the form body.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["client_secret_basic", "client_secret_post"],
                            "default": "client_secret_basic",
                        },
                    },
                    "verify": {
                        "label": "Verify TLS",
                        "description": "true (default), false, or the path of a CA bundle on the workers.",
                        "schema": {"type": ["string", "null"], "default": "true"},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per HTTP request (connect and read).",
                        "schema": {"type": ["number", "null"], "default": 60},
                    },
                    "context_path": {
                        "label": "Context path",
                        "description": "Where Spotfire Server is mounted on the host.",
                        "schema": {"type": ["string", "null"], "default": "/spotfire"},
                    },
                    "allow_insecure_http": {
                        "label": "Allow plain http to non-loopback hosts",
                        "description": "Off by default: http is accepted only for localhost/127.0.0.1/[::1].",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                },
                "ui-field-behaviour": {
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
                },
            }
        ],
    }
