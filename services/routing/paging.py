"""Keyset paging of routing's listings (actions, a team's queue, its open tasks): the
condition that starts a page after the position the previous one ended at."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_

# A position in a listing: the time it is ordered by (None sorts last) and the row's id.
Position = tuple[datetime | None, Any]


def after(time_column: Any, id_column: Any, position: Position) -> Any:
    """Rows after `position` in (time, nulls last; id) order."""
    at, row_id = position
    if at is None:
        return and_(time_column.is_(None), id_column > row_id)
    return or_(
        time_column > at,
        and_(time_column == at, id_column > row_id),
        time_column.is_(None),
    )


def split_page(rows: Sequence[Any], *, limit: int, key: str) -> tuple[list[Any], Position | None]:
    """Of `limit` + 1 rows fetched, the page (the first `limit`) and the (`key`, id) position of
    its last row when more follow (None on the last page)."""
    page = list(rows[:limit])
    more = len(rows) > limit and page
    return page, (getattr(page[-1], key), page[-1].id) if more else None
