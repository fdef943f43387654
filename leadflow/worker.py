"""App factories for uvicorn's worker processes (`leadflow ingest --workers N`).

Each worker reads the settings from the environment it inherited, starts the service's
runtime (its consumers join the same group, so partitions are shared out) and stops it when
uvicorn shuts the worker down. `/metrics` adds up every worker's counters from the folder in
PROMETHEUS_MULTIPROC_DIR, which the command sets before the workers start.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from prometheus_client import multiprocess

from leadflow.runtime import Runtime
from shared.config import Settings
from shared.logs import configure_logging


def _worker_app(service: str) -> FastAPI:
    settings = Settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    runtime = Runtime(settings=settings, services=(service,))
    app = runtime.start()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runtime.stop()
            if settings.prometheus_multiproc_dir:
                multiprocess.mark_process_dead(os.getpid(), settings.prometheus_multiproc_dir)

    app.router.lifespan_context = lifespan
    return app


def ingest() -> FastAPI:
    """A worker serving the ingest service."""
    return _worker_app("ingest")


def scoring() -> FastAPI:
    """A worker running the scoring service."""
    return _worker_app("scoring")


def routing() -> FastAPI:
    """A worker running the routing service."""
    return _worker_app("routing")
