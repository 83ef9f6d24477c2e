"""Exceptions raised by the Spotfire provider.

The hierarchy is flat: every error is a :class:`SpotfireError`; HTTP answers from the server
are :class:`SpotfireApiError` subclasses chosen by the Spotfire error code (or, failing that,
the HTTP status). Errors carry the HTTP status, the error code, the server's description,
the method and the path -- never a token, a secret or a query string.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


class SpotfireError(AirflowException):
    """Base class of every error raised by this provider."""


class SpotfireConfigurationError(SpotfireError, ValueError):
    """The connection or the task's arguments are invalid; the message says how to fix them."""


class SpotfireDataError(SpotfireError, ValueError):
    """A DataFrame or file cannot be written as SBDF; the message names the column and the fix."""


class SpotfireTransportError(SpotfireError):
    """The server could not be reached or the connection broke (DNS, refused, reset, timeout).

    ``request_sent`` is False when the request certainly never reached the server (DNS failure,
    connection refused, connect timeout, TLS handshake), so even a non-idempotent request may be
    sent again; True when the server may have received (and acted on) it.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class SpotfireTLSError(SpotfireTransportError):
    """The TLS handshake failed, usually an untrusted or mismatched server certificate."""


class SpotfireJobError(SpotfireError):
    """A remote job (upload or Automation Services) ended in a state other than success."""

    def __init__(self, message: str, *, job_id: str | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status


class SpotfireTimeoutError(SpotfireJobError):
    """A wait for a remote job passed its deadline (the job is aborted where possible)."""


class SpotfireAutomationBusyError(SpotfireJobError):
    """Automation Services kept answering Busy to a start until the retry bound was exhausted."""


class SpotfireApiError(SpotfireError):
    """The server answered with an HTTP error (4xx/5xx) or an OAuth2 error."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        description: str | None = None,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code  # type: ignore[assignment]  # int, not AirflowException's HTTPStatus
        self.code = code
        self.description = description
        self.method = method
        self.path = path
        self.retry_after = retry_after

    def with_message(self, message: str) -> SpotfireApiError:
        """A copy of this error (same class and HTTP details) with a clearer message."""
        return type(self)(
            message,
            status_code=self.status_code,
            code=self.code,
            description=self.description,
            method=self.method,
            path=self.path,
            retry_after=self.retry_after,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (used in trigger events and XCom)."""
        return {
            "type": type(self).__name__,
            "status_code": self.status_code,
            "code": self.code,
            "description": self.description,
            "method": self.method,
            "path": self.path,
            "message": str(self),
        }


class SpotfireAuthenticationError(SpotfireApiError):
    """401, or the token endpoint refused the client (invalid_client, invalid_grant)."""


class SpotfirePermissionError(SpotfireApiError):
    """403: the API client lacks a scope, library permission or administrator rights."""


class SpotfireBadRequestError(SpotfireApiError):
    """400: invalid_request, precondition_failed or bad_digest."""


class SpotfireNotFoundError(SpotfireApiError):
    """404: not_found or job_unknown."""


class SpotfireConflictError(SpotfireApiError):
    """409 already_exists: the library item exists and overwrite was not requested."""


class SpotfireLimitExceededError(SpotfireApiError):
    """413 limit_exceeded or 429 rate_limit_exceeded: a server-side size or count limit."""


class SpotfireUnsupportedMediaTypeError(SpotfireApiError):
    """415 unsupported_mediatype: the content is not accepted (e.g. not an SBDF file)."""


class SpotfireServerError(SpotfireApiError):
    """5xx: internal_error, server_busy, or a gateway error."""


ERROR_CODE_TO_EXCEPTION: dict[str, type[SpotfireApiError]] = {
    "invalid_request": SpotfireBadRequestError,
    "precondition_failed": SpotfireBadRequestError,
    "bad_digest": SpotfireBadRequestError,
    "not_authenticated": SpotfireAuthenticationError,
    "not_authorized": SpotfirePermissionError,
    "not_found": SpotfireNotFoundError,
    "job_unknown": SpotfireNotFoundError,
    "method_not_allowed": SpotfireApiError,
    "already_exists": SpotfireConflictError,
    "limit_exceeded": SpotfireLimitExceededError,
    "rate_limit_exceeded": SpotfireLimitExceededError,
    "unsupported_mediatype": SpotfireUnsupportedMediaTypeError,
    "internal_error": SpotfireServerError,
    "server_busy": SpotfireServerError,
    # OAuth2 token endpoint errors (RFC 6749 section 5.2)
    "invalid_client": SpotfireAuthenticationError,
    "invalid_grant": SpotfireAuthenticationError,
    "unauthorized_client": SpotfirePermissionError,
    "invalid_scope": SpotfirePermissionError,
    "unsupported_grant_type": SpotfireBadRequestError,
    "access_denied": SpotfirePermissionError,
    # RFC 6750 bearer token errors (WWW-Authenticate)
    "invalid_token": SpotfireAuthenticationError,
    "insufficient_scope": SpotfirePermissionError,
}

STATUS_TO_EXCEPTION: dict[int, type[SpotfireApiError]] = {
    400: SpotfireBadRequestError,
    401: SpotfireAuthenticationError,
    403: SpotfirePermissionError,
    404: SpotfireNotFoundError,
    409: SpotfireConflictError,
    413: SpotfireLimitExceededError,
    415: SpotfireUnsupportedMediaTypeError,
    429: SpotfireLimitExceededError,
}


def exception_class_for(status_code: int, code: str | None) -> type[SpotfireApiError]:
    """Pick the exception class for an HTTP error: by Spotfire/OAuth2 code first, then by status."""
    if code and code in ERROR_CODE_TO_EXCEPTION:
        return ERROR_CODE_TO_EXCEPTION[code]
    if status_code in STATUS_TO_EXCEPTION:
        return STATUS_TO_EXCEPTION[status_code]
    if status_code >= 500:
        return SpotfireServerError
    return SpotfireApiError


class SbdfSchemaError(SpotfireDataError):
    """A streamed table changed its columns (name, order or SBDF type) between batches."""

    def __init__(self, message: str, *, column: str | None = None, batch: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.batch = batch


class UploadAborted(SpotfireJobError):
    """An upload was stopped from outside (task killed or timed out); its upload job is cancelled."""


class LoginError(SpotfireError):
    """``airflow-spotfire login`` or ``revoke`` could not be completed; the message says why and how to fix it."""
