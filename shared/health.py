"""Liveness and readiness: `/healthz` says the process is up, `/readyz` whether it can work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from shared.consumer import ConsumerLoop
from shared.db import MigrationsOutOfDate, check_migrations
from shared.http import ResourcesDep
from shared.kafka import broker_reachable

router = APIRouter(tags=["operations"])


class Check(BaseModel):
    """One thing the process needs: the database, migrations, the broker, each consumer."""

    name: str
    ok: bool
    error: str | None = None  # present when not ok
    details: dict[str, Any] | None = None


class Degraded(BaseModel):
    """A background worker waiting out an outage; the process stays ready."""

    name: str
    error: str


class Readiness(BaseModel):
    """What `/readyz` answers, ready (200) or not (503)."""

    status: Literal["ready", "not_ready"]
    checks: list[Check]
    degraded: list[Degraded]


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


def _check(name: str, probe: Callable[[], str | None]) -> dict[str, Any]:
    try:
        problem = probe()
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    return {"name": name, "ok": problem is None, **({"error": problem} if problem else {})}


def _consumer_probe(loop: ConsumerLoop) -> Callable[[], str | None]:
    """A probe naming what keeps `loop` from working (None when it works)."""
    return lambda: "; ".join(loop.problems()) or None


@router.get(
    "/readyz",
    summary="Broker, database, migrations and consumers are ready",
    responses={
        200: {"model": Readiness, "description": "Ready: every check is ok"},
        503: {"model": Readiness, "description": "Not ready: the failing checks say why"},
    },
)
def readyz(resources: ResourcesDep) -> JSONResponse:
    """200 when everything this process needs is ready; 503 naming what is not."""

    def database() -> str | None:
        with resources.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None

    def migrations() -> str | None:
        try:
            check_migrations(resources.engine)
        except MigrationsOutOfDate as exc:
            return str(exc)
        return None

    def broker() -> str | None:
        if broker_reachable(settings=resources.settings):
            return None
        return f"Kafka broker {resources.settings.kafka_bootstrap_servers} is not reachable"

    broker_check = _check("broker", broker)
    broker_check["details"] = {
        "bootstrap_servers": resources.settings.kafka_bootstrap_servers,
        **resources.broker_details,
    }
    checks = [
        _check("database", database),
        _check("migrations", migrations),
        broker_check,
    ]
    for loop in resources.consumers:
        checks.append(_check(f"consumer:{loop.name}", _consumer_probe(loop)))
    ready = all(c["ok"] for c in checks)
    # Background workers waiting out an outage (an SMTP server, a webhook receiver): named,
    # but the process still takes and handles events, so it stays ready.
    degraded = [
        {"name": outage.worker, "error": described}
        for outage in resources.outages
        if (described := outage.describe())
    ]
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks, "degraded": degraded},
        status_code=200 if ready else 503,
    )
