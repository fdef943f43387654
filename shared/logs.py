"""Process logging: one stderr handler, JSON or plain-text lines, and no raw email in either.

The format is `json`, `text` or `auto` (the default): readable text when the stream is a
terminal (a person is watching), JSON lines otherwise (a log shipper is reading).

Callers attach context with `extra={"event_id": ..., "partition": ...}`; the fields named in
`CONTEXT_FIELDS` become JSON keys (or ` key=value` suffixes in text). Every email address in
the message, in a string context field or in a traceback is replaced by `hash_email(...)`, a
stable hash, so one person can be followed across lines without the address being logged.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

CONTEXT_FIELDS: tuple[str, ...] = (
    "event_id",
    "lead_id",
    "topic",
    "partition",
    "offset",
    "group",
    "action_id",
    "request_id",
)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

LOG_FORMATS = ("auto", "json", "text")

# Loggers that are chatty at INFO: kafka-python logs every connection and rebalance step, and
# alembic logs its plugin set-up on every start.
_CHATTY_LOGGERS = ("kafka", "alembic")

# Deliberately loose (word characters, dots, %, + and - before the @, dotted labels and a
# letters-only TLD after it): logging a false positive as a hash costs nothing, a miss leaks.
# Dots only between atoms, so a truncated repr such as "ty...ana@x.example" hashes as the
# address does.
_EMAIL_RE = re.compile(r"[\w%+-]+(?:\.[\w%+-]+)*@(?:[\w-]+\.)+[^\W\d_]{2,}", re.IGNORECASE)


def hash_email(email: str) -> str:
    """A stable, non-reversible stand-in for an email address: `email:` + 16 hex of sha256."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
    return f"email:{digest[:16]}"


def redact(text: str) -> str:
    """The text with every email address in it replaced by its `hash_email`."""
    if "@" not in text:  # the common case; skips the regex on almost every line
        return text
    return _EMAIL_RE.sub(lambda match: hash_email(match.group(0)), text)


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """The record's context fields, strings redacted and anything unusual made a string."""
    fields: dict[str, Any] = {}
    for name in CONTEXT_FIELDS:
        if name not in record.__dict__:
            continue
        value = record.__dict__[name]
        if isinstance(value, bool | int | float) or value is None:
            fields[name] = value
        else:
            # str() before redacting so that an object whose repr holds an email is caught too.
            fields[name] = redact(value if isinstance(value, str) else str(value))
    return fields


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line, with context fields and emails hashed."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single-line JSON object."""
        created = datetime.fromtimestamp(record.created, UTC)
        payload: dict[str, Any] = {
            "ts": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        payload.update(_context(record))
        # Formatted here rather than via record.exc_text: that cache is shared with every other
        # handler, and must not end up holding (or be read back as) unredacted text.
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact(self.formatStack(record.stack_info))
        return orjson.dumps(payload).decode("utf-8")


class TextFormatter(logging.Formatter):
    """Formats a record as `TEXT_FORMAT` plus ` key=value` context, with emails hashed."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record as a plain-text line (and its redacted traceback, if any)."""
        message = redact(record.getMessage())
        suffix = "".join(f" {key}={value}" for key, value in _context(record).items())
        # A copy, so that the redacted message and traceback never leak into other handlers'
        # view of the record (nor their unredacted exc_text cache into ours).
        shown = copy.copy(record)
        shown.msg = message + suffix
        shown.args = None
        shown.exc_text = redact(self.formatException(record.exc_info)) if record.exc_info else None
        shown.exc_info = None
        shown.stack_info = redact(record.stack_info) if record.stack_info else None
        return super().format(shown)


def resolve_format(fmt: str, *, stream: TextIO) -> str:
    """`json` or `text`: an explicit choice as given; `auto` is text when `stream` is a
    terminal, JSON otherwise (a closed or unusual stream counts as not a terminal)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (expected 'auto', 'json' or 'text')")
    if fmt != "auto":
        return fmt
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


class LeadflowLogHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs; its own type so a second call can find it."""


def configure_logging(
    *,
    level: str,
    fmt: str,
    stream: TextIO | None = None,
) -> None:
    """Install one redacting handler (JSON or text, `auto`: text on a terminal) on the root
    logger, replacing ours if any."""
    levels = logging.getLevelNamesMapping()
    if level.upper() not in levels:
        raise ValueError(f"unknown log level {level!r}")
    target = sys.stderr if stream is None else stream
    chosen = resolve_format(fmt, stream=target)
    numeric = levels[level.upper()]

    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, LeadflowLogHandler)]:
        root.removeHandler(existing)
        existing.close()
    handler = LeadflowLogHandler(target)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(numeric)
    for chatty in _CHATTY_LOGGERS:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, numeric))
