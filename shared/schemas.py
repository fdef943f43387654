"""What routes declare in the OpenAPI besides their success: the error answer (an RFC 9457
problem) and the statuses each kind of route answers with it, so clients (and schemathesis) know
every answer; how the app's document is finished (the problem schema, the legacy error body);
and the constraints text and times from a request must meet to reach the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from shared.http import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, ErrorFormat


class Problem(BaseModel):
    """Every error answer, as `application/problem+json` (RFC 9457)."""

    type: str = Field(
        description=f"the problem type, `{PROBLEM_TYPE_BASE}<code>`",
        json_schema_extra={"format": "uri"},
        examples=[PROBLEM_TYPE_BASE + "not_found"],
    )
    title: str = Field(description="a short summary of the problem type", examples=["Not found"])
    status: int = Field(ge=400, le=599, description="the HTTP status")
    detail: str = Field(description="what went wrong this time, for people")
    instance: str = Field(description="the request's path", examples=["/v1/leads/l-404"])
    code: str = Field(description="stable and machine-readable, e.g. not_found, bad_cursor")
    errors: list[dict[str, Any]] = Field(
        description="e.g. {field, error} per invalid field, {dependency} for an outage"
    )


class ErrorInfo(BaseModel):
    """The error itself: a stable code, a message for people, details for programs."""

    code: str = Field(description="stable and machine-readable, e.g. not_found, bad_cursor")
    message: str
    details: list[dict[str, Any]] = Field(
        default_factory=list,
        description="e.g. {field, error} per invalid field, {dependency} for an outage",
    )


class ErrorBody(BaseModel):
    """Every error answer with LEADFLOW_ERROR_FORMAT=legacy: `{"error": {"code", "message",
    "details"}}`, as `application/json`."""

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
    422: "A parameter or the body is invalid; `errors` names each field",
    429: "The API key is over its rate limit; retry after Retry-After",
    503: "A dependency (the database, the broker) is unavailable; retry after Retry-After",
}

# What every route behind an API key may answer besides its own errors: no or a bad key, a key
# without the scope, a key over its rate limit, the key store (the database) unavailable.
KEYED = (401, 403, 429, 503)
# What a route that reads a JSON body may answer about it.
WITH_BODY = (400, 408, 413, 415, 422)


_SCHEMAS = "#/components/schemas/"


def problem_content(example: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI `content` of an error answer: a Problem (finish_openapi adds its schema)."""
    media: dict[str, Any] = {"schema": {"$ref": _SCHEMAS + Problem.__name__}}
    if example is not None:
        media["example"] = example
    return {PROBLEM_MEDIA_TYPE: media}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses, each a Problem."""
    return {
        status: {"description": DESCRIPTIONS[status], "content": problem_content()}
        for status in sorted(set(statuses))
    }


def _component_schemas(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema and those of the models it holds, by name."""
    schema = model.model_json_schema(ref_template=_SCHEMAS + "{model}")
    return {model.__name__: schema, **schema.pop("$defs", {})}


def _operations(section: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in section.values() for op in item.values() if isinstance(op, dict)]


def _is_fastapis_422(response: dict[str, Any] | None) -> bool:
    """True for the 422 FastAPI documents by itself on a route with parameters."""
    content = (response or {}).get("content", {}).get("application/json", {})
    return bool(content.get("schema", {}).get("$ref") == _SCHEMAS + "HTTPValidationError")


def finish_openapi(document: dict[str, Any], *, error_format: ErrorFormat) -> dict[str, Any]:
    """The app's OpenAPI document with its error answers as they are sent: the Problem schema,
    or with LEADFLOW_ERROR_FORMAT=legacy the legacy body as `application/json`. FastAPI's own
    422 (`HTTPValidationError`, which leadflow never sends) becomes a Problem on a route and
    goes from the `webhooks` (what a subscriber answers is its own business)."""
    paths = _operations(document.get("paths", {}))
    for operation in paths:
        if _is_fastapis_422(operation["responses"].get("422")):
            operation["responses"]["422"] = error_responses(422)[422]
    for operation in _operations(document.get("webhooks", {})):
        if _is_fastapis_422(operation["responses"].get("422")):
            del operation["responses"]["422"]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, referenced no more
        schemas.pop(unused, None)
    if error_format == "problem":
        schemas.update(_component_schemas(Problem))
        return document
    schemas.update(_component_schemas(ErrorBody))
    legacy = {"application/json": {"schema": {"$ref": _SCHEMAS + ErrorBody.__name__}}}
    for operation in paths:
        for response in operation.get("responses", {}).values():
            if PROBLEM_MEDIA_TYPE in response.get("content", {}):
                response["content"] = legacy
    return document


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
