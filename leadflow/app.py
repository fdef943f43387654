"""The FastAPI application: the routes of the services a process runs, on one app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from operations.api import router as ops_router
from services.ingest.api import METRIC_SOURCES
from services.ingest.api import router as ingest_router
from services.ingest.fastpath import NativeEventFastPath
from services.routing.api import router as routing_router
from services.routing.webhook_events import declare_events as declare_lead_webhooks
from services.scoring.api import router as scoring_router
from shared import health
from shared.http import BodyLimitMiddleware, Resources, install_error_handlers
from shared.metrics import RequestCounter
from shared.schemas import finish_openapi
from views.api import router as views_router
from views.pages.routes import router as pages_router

ROUTERS = {"ingest": ingest_router, "scoring": scoring_router, "routing": routing_router}


def operation_id(route: APIRoute) -> str:
    """An operation's OpenAPI id: its route function's name (`list_leads`), stable while the
    function keeps it; unique across the app (tests/unit/leadflow/test_openapi.py)."""
    return route.name


def create_app(*, resources: Resources, services: Iterable[str]) -> FastAPI:
    """An app serving health plus the routes of `services`; the embedded mode passes all three."""
    app = FastAPI(
        title="leadflow",
        version="0.1.0",
        description="Event-driven lead processing: touches in, BANT-qualified, staged and "
        "routed leads out.",
        generate_unique_id_function=operation_id,
        webhooks=APIRouter(generate_unique_id_function=operation_id),
    )
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish_openapi(
                build_openapi(), error_format=resources.settings.error_format
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.resources = resources
    app.state.services = tuple(services)  # what the pages' `/` shows as running
    install_error_handlers(app, error_format=resources.settings.error_format)
    if "ingest" in services:
        # Innermost of ours: inside the body limit and the request counter.
        app.add_middleware(NativeEventFastPath, resources=resources)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=resources.settings.max_body_bytes,
        read_timeout_s=resources.settings.body_read_timeout_s,
        path_max_bytes={
            "/v1/sources/segment": resources.settings.segment_max_body_bytes,
            "/v1/imports": resources.settings.import_max_bytes,
        },
        # A file upload may take longer than the body deadline, as long as it keeps coming.
        path_min_rate={"/v1/imports": resources.settings.import_min_bytes_per_s},
        error_format=resources.settings.error_format,
    )
    app.include_router(health.router)
    app.include_router(ops_router)
    for name in services:
        app.include_router(ROUTERS[name])
        if name == "scoring":
            app.include_router(views_router)  # the read side, over scoring's and routing's data
            app.include_router(pages_router)  # the same, as pages for people
        if name == "routing":
            declare_lead_webhooks(app.webhooks)  # the events subscriptions receive, documented
    if "ingest" in services:
        # Outermost, so answers of the body limit and the error handlers are counted too.
        app.add_middleware(RequestCounter, paths=METRIC_SOURCES)
    return app
