"""FastAPI application factory of the Spotfire Server emulator."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from airflow_provider_spotfire import __version__
from airflow_provider_spotfire.emulator import admin, automation, library, licenses, oauth
from airflow_provider_spotfire.emulator.config import EmulatorConfig
from airflow_provider_spotfire.emulator.errors import install_error_handlers
from airflow_provider_spotfire.emulator.faults import RAW_SEND_KEY, FaultInjectionMiddleware
from airflow_provider_spotfire.emulator.state import EmulatorState


class EmulatorApp(FastAPI):
    """FastAPI app that remembers the server's raw ``send`` (lets fault injection abort connections)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def create_app(config: EmulatorConfig | None = None) -> FastAPI:
    """Build an emulator app with fresh seeded state (``app.state.emulator``)."""
    app = EmulatorApp(
        title="Spotfire Server emulator",
        description="Development/test tool emulating Spotfire Server REST APIs. Not a Spotfire Server.",
        version=__version__,
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
    )
    app.state.emulator = EmulatorState(config)
    install_error_handlers(app)
    app.include_router(oauth.router)
    app.include_router(library.router)
    app.include_router(automation.router)
    app.include_router(licenses.router)
    app.include_router(admin.router)
    # added last = outermost: the request log sees injected faults too
    app.add_middleware(FaultInjectionMiddleware)
    app.add_middleware(admin.RequestLogMiddleware)
    return app
