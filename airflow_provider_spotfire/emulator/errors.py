"""Spotfire REST API error responses (``{"error": {"code", "description"}}``) and the app's error handlers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# code -> HTTP status, from the "Error Codes" tables of the specs
ERROR_STATUS = {
    "invalid_request": 400,
    "precondition_failed": 400,
    "bad_digest": 400,
    "not_authenticated": 401,
    "not_authorized": 403,
    "not_found": 404,
    "job_unknown": 404,
    "method_not_allowed": 405,
    "already_exists": 409,
    "limit_exceeded": 413,
    "unsupported_mediatype": 415,
    "rate_limit_exceeded": 429,
    "internal_error": 500,
    "server_busy": 503,
}


class ApiError(Exception):
    """An error answered with the Spotfire ErrorResponse body and the status of its code."""

    def __init__(
        self, code: str, description: str, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status or ERROR_STATUS[code]
        self.headers = headers or {}


class EmptyError(Exception):
    """An error answered with a status code and no body (AS API: "404 Job not Found, No Content")."""

    def __init__(self, status: int) -> None:
        super().__init__(str(status))
        self.status = status


def error_response(
    code: str, description: str, status: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSONResponse with the Spotfire error body."""
    return JSONResponse(
        {"error": {"code": code, "description": description}},
        status_code=status or ERROR_STATUS[code],
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map exceptions to Spotfire-style error bodies under ``/spotfire/api``."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc.code, exc.description, exc.status, exc.headers)

    @app.exception_handler(EmptyError)
    async def _empty_error(_request: Request, exc: EmptyError) -> Response:
        return Response(status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return error_response("invalid_request", "Invalid or incomplete request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/spotfire/api/"):
            if exc.status_code == 404:
                return error_response("not_found", "The requested resource cannot be found")
            if exc.status_code == 405:
                return error_response(
                    "method_not_allowed",
                    f"The HTTP method {request.method} is not allowed",
                    headers=dict(exc.headers) if exc.headers else None,
                )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("Unhandled error in the Spotfire emulator for %s %s", request.method, request.url.path)
        return error_response("internal_error", f"An error occurred while processing the request: {exc!r}")
