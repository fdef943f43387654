"""Opaque page cursors: the position after which the next page of a listing starts."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from shared.http import ApiError


def bad_cursor(why: str = "not a cursor this API issued") -> ApiError:
    """The 400 for a cursor this API did not issue (or issued for another listing)."""
    return ApiError(
        400, "bad_cursor", f"cursor: {why}", details=[{"field": "cursor", "error": why}]
    )


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor holding the position after which the next page starts."""
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def decode_cursor(cursor: str, *, size: int) -> list[Any]:
    """The position a cursor holds (`size` parts); 400 for a cursor we did not issue."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise bad_cursor() from None
    if not isinstance(parts, list) or len(parts) != size or not all(map(_scalar, parts)):
        raise bad_cursor()
    return parts


def _scalar(part: Any) -> bool:
    """True for what our cursors hold: text a database can compare (no NUL), numbers, null."""
    if isinstance(part, str):
        return "\x00" not in part
    return part is None or isinstance(part, int | float)
