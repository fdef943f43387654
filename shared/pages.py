"""Shapes the routes of every area answer with: a page of a listing (`Page[T]`) and a time as
the routes write it."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

# A time as the routes write it: ISO 8601 with its UTC offset (`datetime.isoformat()`).
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a listing: pass `next_cursor` back as `cursor` for the next page (null: this
    is the last one)."""

    items: list[T]
    next_cursor: str | None
