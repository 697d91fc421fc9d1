"""Cursor pagination: `?limit=&cursor=` in, `{items, next_cursor}` out.

A cursor is the opaque, URL-safe encoding of the sort key of the last item returned;
the next page is everything strictly after it (keyset pagination: stable under inserts,
constant cost per page).
"""

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from app.core.errors import FieldError, InvalidInput

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as error:
        raise _invalid_cursor() from error
    if not isinstance(key, list):
        raise _invalid_cursor()
    return key


def _invalid_cursor() -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this API returned.",
        errors=[FieldError(location="query", pointer="/cursor", message="Invalid cursor")],
    )


MAX_PAGE_LIMIT = 1000
DEFAULT_PAGE_LIMIT = 50
PageLimit = Annotated[
    int, Query(ge=1, le=MAX_PAGE_LIMIT, description="Items per page (at most 1000).")
]
PageCursor = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page."),
]


def decode_id_cursor(cursor: str | None) -> uuid.UUID | None:
    """The id after which a page sorted by (time-ordered) id continues."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    try:
        return uuid.UUID(str(key[0]))
    except (IndexError, ValueError) as error:
        raise _invalid_cursor() from error


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (timestamp, id) after which a page sorted by time, then id, continues."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    try:
        at, row_id = datetime.fromisoformat(str(key[0])), uuid.UUID(str(key[1]))
    except (IndexError, ValueError) as error:
        raise _invalid_cursor() from error
    if at.tzinfo is None:
        raise _invalid_cursor()
    return at, row_id


RowT = TypeVar("RowT")


def split_page(
    rows: Sequence[RowT], limit: int, cursor_key: Callable[[RowT], list[Any]]
) -> tuple[list[RowT], str | None]:
    """Rows were fetched with `limit + 1`; the extra row only says a next page exists."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, encode_cursor(cursor_key(page[-1]))
