"""The cursors of routing's listings (actions, a team's queue, its open tasks): the position a
page ends at, opaque to clients. A cursor names its listing, so another listing refuses it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.routing.paging import Position
from services.scoring.public import bad_cursor, decode_cursor, encode_cursor
from shared.db import as_utc
from shared.schemas import utc_time


def encode_position(listing: str, at: datetime | None, row_id: Any) -> str:
    """The cursor of the page that ends at the row with this time and id."""
    moment = as_utc(at)
    return encode_cursor(listing, moment.isoformat() if moment else None, row_id)


def decode_position(cursor: str, *, listing: str, id_type: type) -> Position:
    """The position a cursor of `listing` holds; 400 naming `cursor` unless this API issued it
    for that listing."""
    issued_for, at, row_id = decode_cursor(cursor, size=3)
    wrong = bad_cursor("not a cursor this API issued for this listing")
    if issued_for != listing or type(row_id) is not id_type:
        raise wrong
    if id_type is int and not -(2**63) <= row_id < 2**63:
        raise wrong
    if at is None:
        return None, row_id
    try:
        return utc_time(datetime.fromisoformat(at)), row_id
    except (TypeError, ValueError):
        raise wrong from None
