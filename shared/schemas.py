"""What routes declare in the OpenAPI besides their success: the common error body and the
statuses each kind of route answers with it, so clients (and schemathesis) know every answer;
and the constraints text and times from a request must meet to reach the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field


class ErrorInfo(BaseModel):
    """The error itself: a stable code, a message for people, details for programs."""

    code: str = Field(description="stable and machine-readable, e.g. not_found, bad_cursor")
    message: str
    details: list[dict[str, Any]] = Field(
        default_factory=list,
        description="e.g. {field, error} per invalid field, {dependency} for an outage",
    )


class ErrorBody(BaseModel):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    error: ErrorInfo


DESCRIPTIONS = {
    400: "The body is not JSON, or a cursor this API did not issue",
    401: "Missing, unknown or revoked API key",
    403: "The API key lacks the scope this route needs",
    404: "No such resource",
    408: "The body did not arrive within LEADFLOW_BODY_READ_TIMEOUT_S",
    409: "The resource is not in a state that allows this",
    413: "The body is over the size limit",
    415: "The body is not declared as JSON (Content-Type: application/json)",
    422: "A parameter or the body is invalid; details name each field",
    429: "The API key is over its rate limit; retry after Retry-After",
    503: "A dependency (the database, the broker) is unavailable; retry after Retry-After",
}

# What every route behind an API key may answer besides its own errors: no or a bad key, a key
# without the scope, a key over its rate limit, the key store (the database) unavailable.
KEYED = (401, 403, 429, 503)
# What a route that reads a JSON body may answer about it.
WITH_BODY = (400, 408, 413, 415, 422)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses, each with the common error body."""
    return {
        status: {"model": ErrorBody, "description": DESCRIPTIONS[status]}
        for status in sorted(set(statuses))
    }


# Text a request may carry to the database: PostgreSQL's text holds no NUL character (and
# pydantic refuses a lone surrogate before it matches a pattern). A parameter or field declares
# this pattern, so the OpenAPI says so and FastAPI answers 422 naming it, not the database 500.
STORABLE_TEXT = r"^[^\x00]*$"


def utc_time(value: datetime) -> datetime:
    """The time in UTC, a naive one taken as UTC; ValueError for a time UTC cannot hold (an
    offset that moves it before year 1 or past year 9999)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


# A time from a request, in UTC: what the database stores and compares.
UtcDateTime = Annotated[datetime, AfterValidator(utc_time)]
