"""``explain_create_error``: the advice for each way Spotfire refuses to create an upload job.

The hook tests reach the common refusals over HTTP (missing folder, existing item, no write
access, size and job limits); this pins every rule, including the ones the emulator does not
produce, and the errors that get no advice.
"""

from __future__ import annotations

import pytest

from airflow_provider_spotfire.api.library import LibraryUpload, explain_create_error
from airflow_provider_spotfire.exceptions import (
    SpotfireApiError,
    SpotfireBadRequestError,
    SpotfireConflictError,
    SpotfireLimitExceededError,
    SpotfireNotFoundError,
    SpotfirePermissionError,
    SpotfireServerError,
    SpotfireUnsupportedMediaTypeError,
)

UPLOAD = LibraryUpload(parent_path="/Reports", title="sales", number_of_bytes=5000)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            SpotfireNotFoundError("x", status_code=404),
            "Library folder '/Reports' does not exist, or API client 'airflow' cannot see it. Create the "
            "folder in the Spotfire library (or fix library_path '/Reports/sales') and give the client read "
            "and write access to it. (Spotfire: 404).",
        ),
        (
            SpotfireConflictError("x", status_code=409, code="conflict", description="Item exists."),
            "Library item '/Reports/sales' already exists. Pass overwrite=True to replace it, or choose "
            "another library_path. (Spotfire: 409 conflict, Item exists).",
        ),
        (
            SpotfirePermissionError("x", status_code=403, code="not_authorized"),
            "API client 'airflow' may not write to library folder '/Reports'. Grant the client (or a group "
            "it belongs to) write access to that folder, or upload to a folder it can write to. (Spotfire: "
            "403 not_authorized).",
        ),
        (
            SpotfireLimitExceededError("x", status_code=413, description="Too large"),
            "Uploading 5000 bytes to '/Reports/sales' exceeds the server's maximum upload size. Upload less "
            "data, or ask the Spotfire administrator to raise the limit (config-web-service-api). "
            "(Spotfire: 413, Too large).",
        ),
        (
            SpotfireLimitExceededError("x", status_code=429, code="too_many_jobs"),
            "Spotfire refused to start another upload job for '/Reports/sales': too many upload jobs are "
            "open for API client 'airflow' or the server, even after retrying. Run fewer uploads at once "
            "(e.g. an Airflow pool), or ask the administrator to raise the job limits. (Spotfire: 429 "
            "too_many_jobs).",
        ),
        (
            SpotfireUnsupportedMediaTypeError("x", status_code=415),
            "Spotfire does not accept this content for '/Reports/sales'; only SBDF files (spotfire.sbdf) "
            "can be uploaded. (Spotfire: 415).",
        ),
        (
            SpotfireBadRequestError("x", status_code=400, code="invalid_request"),
            "Spotfire rejected the upload job for '/Reports/sales' as invalid. Check library_path, "
            "description and keywords. (Spotfire: 400 invalid_request).",
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, SpotfireApiError) else "",
)
def test_each_refusal_gets_its_advice_and_keeps_its_class(error, message):
    explained = explain_create_error(error, UPLOAD, "airflow")
    assert str(explained) == message
    assert type(explained) is type(error) and explained.status_code == error.status_code


def test_the_size_advice_without_a_known_size():
    upload = LibraryUpload(parent_path="/", title="x")
    explained = explain_create_error(SpotfireLimitExceededError("x", status_code=413), upload, "c")
    assert str(explained).startswith("Uploading the data to '/x' exceeds the server's maximum upload size.")


@pytest.mark.parametrize(
    "error",
    [
        SpotfirePermissionError("missing scope", status_code=403, code="insufficient_scope"),
        SpotfirePermissionError("missing scope", status_code=400, code="invalid_scope"),
        SpotfireServerError("server", status_code=500),
        SpotfireApiError("teapot", status_code=418),
    ],
)
def test_other_errors_pass_through_unchanged(error):
    assert explain_create_error(error, UPLOAD, "airflow") is error
