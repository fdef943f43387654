"""What the running services log about a bad record: JSON lines naming the record, no email."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import orjson
import pytest

from leadflow.runtime import Runtime
from shared.config import Settings
from shared.logs import configure_logging

pytestmark = pytest.mark.integration

EMAIL = "Ana.Ruiz@Acme.example"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The process logs as JSON into a buffer, as `leadflow` configures them; restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            if handler not in saved[0]:
                root.removeHandler(handler)
        root.setLevel(saved[1])


def test_a_rejected_record_is_logged_as_json_with_its_place_and_a_hashed_email(
    runtime: Runtime, settings: Settings, log_stream: io.StringIO
):
    assert runtime.resources is not None and runtime.resources.producer is not None
    # Valid JSON, invalid envelope: pydantic's own message would quote the input, email included.
    value = orjson.dumps(
        {
            "event_id": "bad-1",
            "type": "page_view",
            "occurred_at": "not a time",
            "lead": {"email": EMAIL},
        }
    )
    runtime.resources.producer.publish_sync(
        topic=settings.topic_touch_events, key=EMAIL.lower().encode(), value=value
    )
    scoring = next(c for c in runtime.resources.consumers if c.name == "scoring")
    deadline = time.monotonic() + 30
    while scoring.dead_lettered < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scoring.dead_lettered == 1

    text = log_stream.getvalue()
    assert EMAIL not in text and EMAIL.lower() not in text
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    parked = [
        line for line in lines if line.get("event_id") == "bad-1" and "parked" in line["message"]
    ]
    assert len(parked) == 1
    line = parked[0]
    assert line["topic"] == settings.topic_touch_events
    assert isinstance(line["partition"], int) and isinstance(line["offset"], int)
    assert line["group"] == settings.group_scoring
    assert line["level"] == "ERROR"
    # The reason names the fields and rules, not the values.
    assert "occurred_at: Input should be a valid datetime" in line["message"]
    assert "not a time" not in line["message"]
