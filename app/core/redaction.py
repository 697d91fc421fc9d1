"""Erasing personal values in place: the marker and the SQL expressions every domain uses.

A customer's erase (the right to be forgotten) keeps every row that ledgers, merges and
histories need, and replaces what could identify the person with one marker.
Append-only tables accept such an update only inside `redacting()` (migration 0014).
"""

from typing import Any

from sqlalchemy import case, func, literal, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

REDACTED = "[erased]"


def redacted_text(column: Any) -> ColumnElement[Any]:
    """The marker where the column has a value; NULL stays NULL."""
    return case((column.is_(None), None), else_=literal(REDACTED))


def redacted_json(column: Any) -> ColumnElement[Any]:
    """A JSON value whose strings are all the marker (numbers and booleans are kept)."""
    return func.cdp_redact_strings(column)


async def allow_history_redaction(session: AsyncSession) -> None:
    """Let this transaction (only) replace personal values in append-only history rows
    with the marker; the trigger still refuses any other change, and every DELETE."""
    await session.execute(text("SET LOCAL cdp.redacting = 'on'"))
