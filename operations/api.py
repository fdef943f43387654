"""Operations routes: Prometheus metrics, stream health, the dead-letter queues, the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from kafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from operations import followups as followup_check
from operations import repository as repo
from operations import service
from operations.schemas import DlqPage, Followups, Overview, ReplayReport, Streams
from shared import metrics
from shared.auth import OpsReader, OpsWriter
from shared.events import utcnow
from shared.faults import PublishError
from shared.http import ApiError, ResourcesDep, SessionDep
from shared.ops.broker import StreamMonitor
from shared.schemas import KEYED, WITH_BODY, error_responses

router = APIRouter(tags=["operations"])

STATIC = Path(__file__).resolve().parent / "static"
_ASSETS = {p.name for p in STATIC.iterdir() if p.is_file()} if STATIC.is_dir() else set()


def _monitor(resources: ResourcesDep) -> StreamMonitor:
    if resources.monitor is None:
        raise ApiError(503, "unavailable", "this process does not monitor the broker")
    return resources.monitor


def _broker_down(exc: Exception) -> ApiError:
    return ApiError(
        503,
        "unavailable",
        f"the Kafka broker could not be read: {exc}",
        headers={"Retry-After": "5"},
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=metrics.PrometheusText,
)
def prometheus_metrics(resources: ResourcesDep) -> Response:
    """Counters, histograms and scrape-time gauges of this process, for Prometheus."""
    body = metrics.render(
        local=resources.metrics, multiproc_dir=resources.settings.prometheus_multiproc_dir
    )
    return metrics.PrometheusText(body)


@router.get(
    "/v1/ops/streams",
    response_model=Streams,
    summary="Offsets, lag, rates and DLQ depth per topic and partition",
    responses=error_responses(*KEYED),
)
def streams(_: OpsReader, resources: ResourcesDep, session: SessionDep) -> dict[str, Any]:
    """Each topic's partitions with end offset, every group's committed offset and lag, events/s
    over the last minute, the newest record's time, DLQ depth, and which broker this is."""
    return service.streams_report(
        monitor=_monitor(resources), replayed=repo.replayed_counts(session)
    )


@router.get(
    "/v1/ops/overview",
    response_model=Overview,
    summary="What the /ops dashboard draws",
    responses=error_responses(*KEYED),
)
def overview(_: OpsReader, resources: ResourcesDep, session: SessionDep) -> dict[str, Any]:
    """Throughput and lag over the last minutes, DLQs, action delivery, SLA breaches, leads."""
    return service.overview(monitor=_monitor(resources), session=session)


@router.get(
    "/v1/ops/dlq",
    response_model=DlqPage,
    summary="Parked messages with their error and origin",
    responses=error_responses(*KEYED, 422),
)
def list_dlq(
    _: OpsReader,
    resources: ResourcesDep,
    topic: Annotated[
        str | None,
        Query(description="a DLQ topic or the topic whose DLQ to read; default: every DLQ"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    include_replayed: bool = True,
) -> dict[str, Any]:
    """A page of dead-lettered messages: error, origin topic/partition/offset, value, replay."""
    try:
        return service.list_dlq(
            settings=resources.settings,
            sessions=resources.sessions,
            topic=topic,
            limit=limit,
            cursor=cursor,
            include_replayed=include_replayed,
        )
    except service.DlqError as exc:
        raise ApiError(422, "validation_error", str(exc)) from exc
    except KafkaError as exc:
        raise _broker_down(exc) from exc


class ReplayRequest(BaseModel):
    """Which parked messages to re-publish: `ids`, or `all` (optionally of one `topic`)."""

    model_config = ConfigDict(extra="forbid")
    topic: str | None = Field(None, description="a DLQ topic or the topic whose DLQ to replay")
    ids: list[str] | None = Field(None, max_length=10_000, description="ids from GET /v1/ops/dlq")
    all: bool = False

    @model_validator(mode="after")
    def _one_selection(self) -> ReplayRequest:
        if bool(self.ids) == self.all:
            raise ValueError("give either ids (a non-empty list) or all=true")
        return self


@router.post(
    "/v1/ops/dlq/replay",
    response_model=ReplayReport,
    summary="Re-publish parked messages to their topic, once",
    responses=error_responses(*KEYED, *WITH_BODY),
)
def replay_dlq(body: ReplayRequest, _: OpsWriter, resources: ResourcesDep) -> dict[str, Any]:
    """Re-publish the selected (or all not yet replayed) messages; a replayed one is skipped."""
    if resources.producer is None:
        raise ApiError(503, "unavailable", "this process has no Kafka producer")
    try:
        report = service.replay_dlq(
            settings=resources.settings,
            sessions=resources.sessions,
            producer=resources.producer,
            topic=body.topic,
            ids=body.ids,
            now=utcnow,
        )
    except service.DlqError as exc:
        raise ApiError(422, "validation_error", str(exc)) from exc
    except (PublishError, KafkaError) as exc:
        raise _broker_down(exc) from exc
    return report.as_dict()


@router.get(
    "/v1/ops/followups",
    response_model=Followups,
    summary="Leads that acted and got no next step, and which touch types nothing answers",
    responses=error_responses(*KEYED, 422),
)
def followups(
    _: OpsReader,
    resources: ResourcesDep,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=365)] = 30,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Leads whose newest action (a touch that signals consideration or later) in the last
    `days` got no planned follow-up and no owner contact within the owner's SLA (2 days when
    the team sets none), the longest waiting first; and each touch type with the playbooks and
    routing rules that answer it (`unanswered_types`: those nothing answers)."""
    return followup_check.followups(
        session=session, settings=resources.settings, days=days, limit=limit
    )


@router.get("/ops", include_in_schema=False)
def dashboard() -> FileResponse:
    """The live operations dashboard (its data comes from /v1/ops/overview)."""
    return FileResponse(STATIC / "ops.html", media_type="text/html")


@router.get("/ops/static/{name}", include_in_schema=False)
def dashboard_asset(name: str) -> FileResponse:
    """The dashboard's script and style sheet."""
    if name not in _ASSETS:
        raise ApiError(404, "not_found", f"no dashboard asset {name!r}")
    return FileResponse(STATIC / name)
