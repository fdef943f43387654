"""`POST /v1/events` answered before FastAPI's routing, for the requests that succeed.

For one small event, FastAPI's generic request handling (its middleware layers, the route
search, dependency solving, the body parsed by the stdlib and validated again, the answer
validated against its model) costs more than the publish itself. This ASGI middleware takes a
`POST /v1/events` with a JSON body, validates the event straight from the bytes, checks the key
as the `EventsWriter` dependency does (`authorize`), publishes, and answers 202 with the body
FastAPI would have made.

Whatever it does not fully handle goes to the FastAPI route, unchanged, with the body it read
replayed: no JSON content type, a body that does not validate (FastAPI then answers with its
own messages, and checks the key first as always), a body it could not read. The key is only
checked here for a valid event, so no request is checked twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import TypeAdapter

from services.ingest.api import accept_native
from services.ingest.schemas import AcceptedOut
from shared.auth import authorize
from shared.events import TouchEventIn
from shared.http import ApiError, Resources, api_error_response, dependency_unavailable

PATH = "/v1/events"
_ACCEPTED_JSON = TypeAdapter(AcceptedOut)


def is_json(content_type: bytes | None) -> bool:
    """True where FastAPI reads a body as JSON: `application/json`, with any parameters."""
    if not content_type:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def _header(scope: Any, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class NativeEventFastPath:
    """ASGI middleware: valid `POST /v1/events` requests published without FastAPI's route."""

    def __init__(self, app: Any, *, resources: Resources) -> None:
        self.app, self.resources = app, resources

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer a valid native event here; hand everything else to the app."""
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
            or not is_json(_header(scope, b"content-type"))
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Any] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except Exception as exc:  # e.g. the body limit's 413: the app meets it where it did
            await self.app(scope, _replay(messages, receive, error=exc), send)
            return
        if messages[-1]["type"] != "http.request":  # the client went away mid-body
            await self.app(scope, _replay(messages, receive), send)
            return
        body = b"".join(m.get("body", b"") for m in messages)
        try:
            event = TouchEventIn.model_validate_json(body)
        except ValueError:  # not JSON, or not a valid event: FastAPI's own answer
            await self.app(scope, _replay(messages, receive), send)
            return
        error_format = self.resources.settings.error_format
        try:
            await authorize(Request(scope, receive), self.resources, scope="events:write")
            accepted = await accept_native(self.resources, event)
        except ApiError as exc:
            response: Response = api_error_response(exc, scope=scope, error_format=error_format)
        except Exception as exc:
            unavailable = dependency_unavailable(exc, where=f"POST {PATH}")
            if unavailable is None:
                raise
            response = api_error_response(unavailable, scope=scope, error_format=error_format)
        else:
            response = Response(
                _ACCEPTED_JSON.dump_json(accepted), status_code=202, media_type="application/json"
            )
        await response(scope, receive, send)


def _replay(messages: list[Any], receive: Any, *, error: Exception | None = None) -> Any:
    """A receive that gives back `messages` (then raises `error`, if any), then reads on."""
    pending = list(messages)

    async def replayed() -> Any:
        if pending:
            return pending.pop(0)
        if error is not None:
            raise error
        return await receive()

    return replayed
