"""Structured logs: JSON and text lines carry context, and never a raw email address."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from shared.config import Settings
from shared.logs import (
    CONTEXT_FIELDS,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    hash_email,
    redact,
    resolve_format,
)

EMAIL = "Ann.Smith+promo@Example.co.uk"


def _record(
    msg: str,
    *args: object,
    level: int = logging.INFO,
    exc_info: Any = None,
    **extra: object,
) -> logging.LogRecord:
    """A record as `logger.log(level, msg, *args, extra=extra)` would make it."""
    record = logging.LogRecord(
        "leadflow.test", level, __file__, 1, msg, args or None, exc_info, func="f"
    )
    record.__dict__.update(extra)
    return record


def _raised(message: str) -> Any:
    """The exc_info of an exception raised with this message."""
    try:
        raise ValueError(message)
    except ValueError:
        return sys.exc_info()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo whatever configure_logging does to the root and the quieted loggers."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quieted = {name: logging.getLogger(name).level for name in ("kafka", "alembic")}
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quieted.items():
        logging.getLogger(name).setLevel(old)


def _ours(root: logging.Logger, before: list[logging.Handler]) -> list[logging.Handler]:
    return [h for h in root.handlers if h not in before]


def test_hash_is_email_prefix_and_16_hex_of_sha256_of_the_normalised_address() -> None:
    expected = hashlib.sha256(b"ann.smith+promo@example.co.uk").hexdigest()[:16]
    assert hash_email(EMAIL) == f"email:{expected}"
    assert re.fullmatch(r"email:[0-9a-f]{16}", hash_email(EMAIL))


def test_same_email_hashes_the_same_in_any_case() -> None:
    assert hash_email(EMAIL) == hash_email(EMAIL.lower()) == hash_email(f"  {EMAIL.upper()} ")
    assert hash_email(EMAIL) != hash_email("bob@example.co.uk")


def test_redact_replaces_every_address_and_keeps_the_surrounding_text() -> None:
    text = f"from <{EMAIL}>, cc bob@example.com."
    assert redact(text) == f"from <{hash_email(EMAIL)}>, cc {hash_email('bob@example.com')}."


def test_redact_leaves_text_without_an_address_alone() -> None:
    for text in ("lead 42 scored 87", "user@localhost", "50% @ noon", ""):
        assert redact(text) == text


def test_json_line_has_utc_millisecond_timestamp_level_logger_and_message() -> None:
    record = _record("lead %s scored %d", "L-1", 87, level=logging.WARNING)
    record.created = 1_700_000_000.25
    record.msecs = 250.0
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert orjson.loads(line) == {
        "ts": "2023-11-14T22:13:20.250Z",
        "level": "WARNING",
        "logger": "leadflow.test",
        "message": "lead L-1 scored 87",
    }


def test_json_line_carries_event_and_partition_context() -> None:
    fields = {
        "event_id": "e-1",
        "lead_id": "L-1",
        "topic": "leads.touches",
        "partition": 3,
        "offset": 1042,
        "group": "scoring",
        "action_id": "a-9",
        "request_id": "r-7",
    }
    assert set(fields) == set(CONTEXT_FIELDS)
    payload = orjson.loads(JsonFormatter().format(_record("consumed", **fields)))
    assert {key: payload[key] for key in fields} == fields
    assert isinstance(payload["partition"], int)


def test_json_line_omits_absent_context_and_ignores_unknown_extras() -> None:
    payload = orjson.loads(JsonFormatter().format(_record("hi", partition=0, secret="x")))
    assert payload["partition"] == 0
    assert "secret" not in payload
    assert not {"event_id", "offset", "exc"} & set(payload)


def test_email_in_message_args_is_replaced_by_its_hash() -> None:
    line = JsonFormatter().format(_record("unsubscribed %s from %s", EMAIL, "newsletter"))
    assert EMAIL not in line
    assert EMAIL.lower() not in line
    assert orjson.loads(line)["message"] == f"unsubscribed {hash_email(EMAIL)} from newsletter"


def test_email_in_a_string_context_field_is_hashed() -> None:
    line = JsonFormatter().format(_record("routed", lead_id=EMAIL, request_id="r-1"))
    assert EMAIL not in line
    payload = orjson.loads(line)
    assert payload["lead_id"] == hash_email(EMAIL)
    assert payload["request_id"] == "r-1"


def test_non_string_context_object_is_stringified_and_redacted() -> None:
    class Key:
        def __str__(self) -> str:
            return f"key({EMAIL})"

    payload = orjson.loads(JsonFormatter().format(_record("x", event_id=Key())))
    assert payload["event_id"] == f"key({hash_email(EMAIL)})"


def test_email_in_exception_text_is_hashed() -> None:
    record = _record("delivery failed", exc_info=_raised(f"mailbox {EMAIL} is full"))
    line = JsonFormatter().format(record)
    assert EMAIL not in line
    exc = orjson.loads(line)["exc"]
    assert exc.startswith("Traceback (most recent call last):")
    assert f"ValueError: mailbox {hash_email(EMAIL)} is full" in exc


def test_formatting_leaves_the_record_untouched_for_other_handlers() -> None:
    record = _record("to %s", EMAIL, exc_info=_raised(EMAIL))
    JsonFormatter().format(record)
    TextFormatter().format(record)
    assert record.getMessage() == f"to {EMAIL}"
    assert record.exc_text is None


def test_text_format_redacts_too() -> None:
    record = _record(
        "bounce from %s", EMAIL, exc_info=_raised(f"no {EMAIL}"), lead_id=EMAIL, partition=2
    )
    text = TextFormatter().format(record)
    assert EMAIL not in text
    first, *traceback = text.splitlines()
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO leadflow\.test bounce from "
        rf"{hash_email(EMAIL)} lead_id={hash_email(EMAIL)} partition=2",
        first,
    )
    assert traceback[-1] == f"ValueError: no {hash_email(EMAIL)}"


def test_text_format_keeps_percent_signs_in_a_message_with_args() -> None:
    text = TextFormatter().format(_record("%s at 100%%", "done"))
    assert text.endswith(" INFO leadflow.test done at 100%")


@pytest.mark.usefixtures("restore_logging")
def test_configure_json_writes_redacted_json_lines_through_the_root_logger() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    logging.getLogger("leadflow.ingest").info("touch from %s", EMAIL, extra={"offset": 7})
    logging.getLogger("leadflow.ingest").debug("not shown")
    [line] = stream.getvalue().splitlines()
    payload = orjson.loads(line)
    assert payload["message"] == f"touch from {hash_email(EMAIL)}"
    assert payload["offset"] == 7
    assert payload["logger"] == "leadflow.ingest"


@pytest.mark.usefixtures("restore_logging")
def test_configure_text_writes_redacted_text_lines() -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="text", stream=stream)
    logging.getLogger("leadflow").debug("hello %s", EMAIL, extra={"topic": "t"})
    output = stream.getvalue()
    assert EMAIL not in output
    assert output.rstrip("\n").endswith(f"DEBUG leadflow hello {hash_email(EMAIL)} topic=t")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(output)


@pytest.mark.usefixtures("restore_logging")
def test_configure_twice_keeps_one_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=first)
    configure_logging(level="INFO", fmt="text", stream=second)
    [ours] = _ours(root, before)
    assert isinstance(ours.formatter, TextFormatter)
    assert root.handlers[: len(before)] == before  # handlers that aren't ours stay
    logging.getLogger("leadflow").warning("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


@pytest.mark.usefixtures("restore_logging")
def test_configure_defaults_to_stderr() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    configure_logging(level="INFO", fmt="json")
    [ours] = _ours(root, before)
    assert isinstance(ours, logging.StreamHandler)
    assert ours.stream is sys.stderr


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("level", "quiet"),
    [("DEBUG", logging.WARNING), ("INFO", logging.WARNING), ("ERROR", logging.ERROR)],
)
def test_configure_quiets_kafka_and_alembic_to_at_least_warning(level: str, quiet: int) -> None:
    configure_logging(level=level, fmt="json", stream=io.StringIO())
    assert logging.getLogger().level == logging.getLevelNamesMapping()[level]
    assert logging.getLogger("kafka").level == quiet
    assert logging.getLogger("alembic").level == quiet


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "json"), ("INFO", "xml")])
def test_configure_refuses_unknown_level_or_format(level: str, fmt: str) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with pytest.raises(ValueError):
        configure_logging(level=level, fmt=fmt, stream=io.StringIO())
    assert root.handlers == before


def test_an_email_after_an_ellipsis_hashes_as_the_address_itself() -> None:
    assert redact("input_value={'ty...Ana@Acme.example'}") == (
        f"input_value={{'ty...{hash_email('ana@acme.example')}'}}"
    )


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logging")
def test_auto_writes_readable_text_to_a_terminal() -> None:
    stream = _Terminal()
    configure_logging(level="INFO", fmt="auto", stream=stream)
    logging.getLogger("leadflow.test").warning("hello %s", EMAIL)
    line = stream.getvalue().strip()
    assert re.fullmatch(rf"\S+ \S+ WARNING leadflow\.test hello {hash_email(EMAIL)}", line)


@pytest.mark.usefixtures("restore_logging")
def test_auto_writes_json_lines_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="auto", stream=stream)
    logging.getLogger("leadflow.test").warning("hello")
    assert orjson.loads(stream.getvalue())["message"] == "hello"


@pytest.mark.parametrize(
    ("fmt", "terminal", "chosen"),
    [
        ("auto", True, "text"),
        ("auto", False, "json"),
        ("json", True, "json"),  # an explicit setting wins over the terminal
        ("text", False, "text"),
    ],
)
def test_explicit_format_wins_and_auto_follows_the_terminal(
    fmt: str, terminal: bool, chosen: str
) -> None:
    stream = _Terminal() if terminal else io.StringIO()
    assert resolve_format(fmt, stream=stream) == chosen


def test_auto_on_a_closed_stream_is_json() -> None:
    stream = io.StringIO()
    stream.close()
    assert resolve_format("auto", stream=stream) == "json"


def test_log_format_setting_defaults_to_auto_and_accepts_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LEADFLOW_LOG_FORMAT", raising=False)
    assert Settings().log_format == "auto"
    monkeypatch.setenv("LEADFLOW_LOG_FORMAT", " Text ")
    assert Settings().log_format == "text"
    monkeypatch.setenv("LEADFLOW_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError):
        Settings()
