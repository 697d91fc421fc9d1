"""Appending to and reading the profile changelog: every domain that changes a profile."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog import repository
from app.changelog.models import ProfileChange
from app.core.auth import Actor
from app.core.copy import copy_records
from app.core.ids import new_id


@dataclass(frozen=True)
class Change:
    """One changed field (or one identifier event) of one customer."""

    operation: str
    field: str | None
    old_value: Any = None
    new_value: Any = None


async def append_changes(
    session: AsyncSession, customer_id: uuid.UUID, changes: Sequence[Change], *, actor: Actor
) -> None:
    """Rows join the caller's transaction: the change and its record commit together."""
    await repository.insert_changes(
        session,
        [
            {
                "id": new_id(),
                "project_id": actor.project_id,
                "customer_id": customer_id,
                "operation": change.operation,
                "field": change.field,
                "old_value": change.old_value,
                "new_value": change.new_value,
                "touchpoint": actor.touchpoint,
                "initiator": actor.initiator,
                "initiator_key_id": actor.key_id,
                "request_id": actor.request_id,
            }
            for change in changes
        ],
    )


# The column order of the records copy_changes takes.
CHANGE_COPY_COLUMNS = (
    "id",
    "project_id",
    "customer_id",
    "operation",
    "field",
    "old_value",
    "new_value",
    "touchpoint",
    "initiator",
    "initiator_key_id",
    "request_id",
)


async def copy_changes(session: AsyncSession, records: Sequence[Sequence[Any]]) -> None:
    """`append_changes` in bulk (a bulk import), with COPY; values are JSON text."""
    await copy_records(session, "profile_changelog", CHANGE_COPY_COLUMNS, records)


async def list_changes(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[ProfileChange]:
    """Newest first; `customer_ids` lets a survivor show the history of customers merged into it."""
    return await repository.list_changes(
        session, project_id=project_id, customer_ids=customer_ids, before_id=before_id, limit=limit
    )


async def redact(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """The changelog step of an erase: every old and new value of the customers' rows
    becomes the marker; operation, field, who and when stay."""
    await repository.redact_changes(session, project_id, customer_ids)
