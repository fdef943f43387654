"""Ingest's answers and their OpenAPI description: the 202 body, the error examples every route
shares, and the request bodies the routes read themselves (so FastAPI cannot infer them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.http import problem_body
from shared.schemas import problem_content


class Rejected(BaseModel):
    """One event of a request that was not accepted, and why."""

    index: int
    field: str
    error: str


class AcceptedOut(BaseModel):
    """The 202 answer: what the broker now has.

    `ids` lists every valid event's id (new and repeated), `accepted` how many were published
    by this request, `duplicates` how many were repeats of events it already had.
    """

    accepted: int
    ids: list[str]
    duplicates: int = 0
    rejected: list[Rejected] = []


class IgnoredEvent(BaseModel):
    """An event of a kind leadflow does not take (a topic, subscription or object type), and
    which of its fields says so."""

    index: int
    field: str
    reason: str


class SourceAcceptedOut(AcceptedOut):
    """A vendor source's answer: 202 with what the broker now has, or 200 when every event was
    of a kind leadflow does not take. `ignored` lists those events by index: the platform gets
    a success, so it keeps the subscription (Shopify deletes one whose deliveries keep failing).
    """

    ignored: list[IgnoredEvent] = []


IGNORED_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "model": SourceAcceptedOut,
        "description": "Nothing taken: every event is of a kind leadflow does not take "
        "(listed in `ignored`), answered with success so the platform keeps the subscription",
    }
}


def error_example(
    status: int, code: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    """An error answer's OpenAPI `content`: the Problem schema, with this example."""
    example = problem_body(status, code, message, details, instance="/v1/events")
    return {"content": problem_content(example)}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "The body is not JSON",
        **error_example(400, "invalid_json", "request body is not valid JSON"),
    },
    401: {
        "description": "Missing or bad API key or signature",
        **error_example(401, "unauthorized", "unknown or revoked API key"),
    },
    403: {
        "description": "The key lacks the scope",
        **error_example(403, "forbidden", "API key 'crm' lacks the scope 'events:write'"),
    },
    408: {
        "description": "The body did not arrive within LEADFLOW_BODY_READ_TIMEOUT_S",
        **error_example(408, "request_timeout", "request body not received within 30 s"),
    },
    413: {
        "description": "Body, batch or one event over the limit",
        **error_example(413, "payload_too_large", "request body is larger than 5000000 bytes"),
    },
    415: {
        "description": "The body is not declared as JSON",
        **error_example(
            415,
            "unsupported_media_type",
            "Content-Type must be application/json, not 'text/plain'",
            [{"field": "Content-Type", "error": "must be application/json"}],
        ),
    },
    422: {
        "description": "No event is valid; each is named by index and field",
        **error_example(
            422,
            "validation_error",
            "no event is valid; events[0].lead: lead needs at least one of email or anonymous_id",
            [
                {
                    "index": 0,
                    "field": "lead",
                    "error": "lead needs at least one of email or anonymous_id",
                }
            ],
        ),
    },
    429: {
        "description": "Over the rate limit; retry after Retry-After",
        **error_example(429, "rate_limited", "API key 'crm' is over its rate limit; retry in 1 s"),
    },
    503: {
        "description": "Broker did not acknowledge; nothing accepted; retry after Retry-After",
        **error_example(
            503,
            "broker_unavailable",
            "the events were not accepted: broker did not acknowledge in time",
        ),
    },
}


def request_body(examples_: dict[str, Any], description: str) -> dict[str, Any]:
    """OpenAPI for a raw JSON body read by the route itself (signatures need the raw bytes)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"type": ["object", "array"]},
                    "examples": {k: {"value": v} for k, v in examples_.items()},
                }
            },
        }
    }
