"""Erasing personal values in place: the marker and the SQL expressions every domain uses.

A customer's erase (the right to be forgotten) keeps every row that ledgers, merges and
histories need, and replaces what could identify the person with one marker.
Append-only history tables are rewritten only by `redact_history` (migrations 0014, 0015).
"""

import uuid
from collections.abc import Sequence
from typing import Any, Literal

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


HistoryRedaction = Literal[
    "cdp_redact_profile_changelog",
    "cdp_redact_identifier_history",
    "cdp_redact_subscription_history",
]


async def redact_history(
    session: AsyncSession,
    redaction: HistoryRedaction,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
) -> None:
    """Replace the customers' personal values in an append-only history table.

    The service's role may not UPDATE those tables (migration 0015): the owner's SECURITY
    DEFINER function does it, changing only the value columns, and the table's trigger
    checks that nothing else changed.
    """
    await session.execute(
        text(f"SELECT {redaction}(:project_id, :customer_ids)"),
        {"project_id": project_id, "customer_ids": list(customer_ids)},
    )
