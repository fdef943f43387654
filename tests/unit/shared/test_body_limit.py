"""The body middleware's read deadline bounds only the body: once it is in, waiting for the
client to disconnect (Starlette does, while it streams an answer) is not cut off."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.exceptions import HTTPException

from shared.http import BodyLimitMiddleware

SCOPE = {"type": "http", "method": "POST", "path": "/x", "headers": []}


def _receiver(*messages: tuple[float, dict[str, Any]]) -> Any:
    """An ASGI receive that gives each message after its delay."""
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        delay, message = pending.pop(0)
        await asyncio.sleep(delay)
        return message

    return receive


async def _run(receive: Any, *, reads: int, timeout_s: float) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def app(_scope: Any, receive: Any, _send: Any) -> None:
        for _ in range(reads):
            got.append(await receive())

    async def send(_message: Any) -> None:
        return None

    await BodyLimitMiddleware(app, max_bytes=1_000, read_timeout_s=timeout_s)(SCOPE, receive, send)
    return got


async def test_a_body_slower_than_the_deadline_is_a_408() -> None:
    receive = _receiver(
        (0.0, {"type": "http.request", "body": b"{", "more_body": True}),
        (0.3, {"type": "http.request", "body": b"}", "more_body": False}),
    )
    with pytest.raises(HTTPException) as caught:
        await _run(receive, reads=2, timeout_s=0.1)
    assert caught.value.status_code == 408
    assert caught.value.headers == {"Connection": "close"}


async def test_waiting_for_the_disconnect_after_the_body_is_not_cut_off() -> None:
    receive = _receiver(
        (0.0, {"type": "http.request", "body": b"{}", "more_body": False}),
        (0.3, {"type": "http.disconnect"}),
    )
    got = await _run(receive, reads=2, timeout_s=0.1)
    assert [m["type"] for m in got] == ["http.request", "http.disconnect"]


async def test_a_body_within_the_deadline_passes_whole() -> None:
    receive = _receiver(
        (0.0, {"type": "http.request", "body": b"{", "more_body": True}),
        (0.02, {"type": "http.request", "body": b"}", "more_body": False}),
    )
    got = await _run(receive, reads=2, timeout_s=1.0)
    assert b"".join(m["body"] for m in got) == b"{}"


async def _status(path: str, size: int) -> int:
    """The status the middleware answers a body of `size` declared bytes on `path` with (200:
    it let the request through)."""
    sent: list[dict[str, Any]] = []

    async def app(_scope: Any, _receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {**SCOPE, "path": path, "headers": [(b"content-length", str(size).encode())]}
    limit = BodyLimitMiddleware(app, max_bytes=1_000, path_max_bytes={"/v1/sources/segment": 5_000})
    await limit(scope, _receiver(), send)
    return int(sent[0]["status"])


async def test_a_path_with_its_own_limit_takes_more_than_the_others() -> None:
    assert await _status("/v1/sources/segment", 4_000) == 200
    assert await _status("/v1/sources/segment", 5_001) == 413
    assert await _status("/v1/events/batch", 4_000) == 413


async def _upload(*messages: tuple[float, dict[str, Any]], timeout_s: float) -> list[Any]:
    """The messages an app reads of an upload to a path with a minimum rate of 1000 B/s."""
    got: list[dict[str, Any]] = []

    async def app(_scope: Any, receive: Any, _send: Any) -> None:
        for _ in messages:
            got.append(await receive())

    async def send(_message: Any) -> None:
        return None

    limit = BodyLimitMiddleware(
        app,
        max_bytes=1_000_000,
        read_timeout_s=timeout_s,
        path_max_bytes={"/v1/imports": 1_000_000},
        path_min_rate={"/v1/imports": 1_000},
    )
    await limit({**SCOPE, "path": "/v1/imports"}, _receiver(*messages), send)
    return got


async def test_an_upload_that_keeps_coming_may_take_longer_than_the_body_deadline() -> None:
    # 0.5 s in all against a 0.2 s deadline; 400 bytes bought 0.4 s more by each later chunk.
    chunk = {"type": "http.request", "body": b"x" * 400, "more_body": True}
    got = await _upload(
        (0.0, chunk),
        (0.15, chunk),
        (0.15, chunk),
        (0.15, {"type": "http.request", "body": b"x", "more_body": False}),
        timeout_s=0.2,
    )
    assert sum(len(m["body"]) for m in got) == 1_201


async def test_an_upload_trickled_byte_by_byte_is_still_a_408() -> None:
    drip = {"type": "http.request", "body": b"x", "more_body": True}
    with pytest.raises(HTTPException) as caught:
        await _upload(*[(0.05, drip)] * 10, timeout_s=0.2)
    assert caught.value.status_code == 408
    assert "plus a second per 1000 bytes" in str(caught.value.detail)
