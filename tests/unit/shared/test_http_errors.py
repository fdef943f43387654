"""The API's answer to a dependency's outage: a 503 naming it, logged once per interval."""

from __future__ import annotations

import logging

import pytest
from kafka.errors import KafkaConnectionError

from shared import http
from shared.http import dependency_unavailable


@pytest.fixture(autouse=True)
def _fresh_log_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "_unavailable_logged", {})


def test_an_outage_is_a_503_naming_the_dependency_with_retry_after() -> None:
    answer = dependency_unavailable(KafkaConnectionError("down"), where="POST /v1/events")
    assert answer is not None
    assert (answer.status, answer.code) == (503, "unavailable")
    assert answer.details == [{"dependency": "broker"}]
    assert answer.headers == {"Retry-After": "5"}


def test_an_error_of_the_request_itself_is_not_an_outage() -> None:
    assert dependency_unavailable(ValueError("bad"), where="POST /v1/events") is None


def test_a_hundred_refused_requests_log_one_line_then_one_with_their_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(http.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="shared.http"):
        for _ in range(100):
            dependency_unavailable(KafkaConnectionError("down"), where="POST /v1/events")
        clock[0] += 11
        dependency_unavailable(KafkaConnectionError("down"), where="POST /v1/events")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "the broker is unavailable" in lines[0]
    assert "(99 more requests refused since the last such line)" in lines[1]
