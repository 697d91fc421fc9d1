"""SQL of the profile changelog: insert many, read a customer's page newest first."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import cast, insert, literal
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.models import ProfileChange
from app.core import redaction
from app.core.db import customer_history_query, table_of
from app.core.redaction import REDACTED

# The marker as a JSON string (the value columns are jsonb).
_MARKER = cast(literal(f'"{REDACTED}"'), JSONB)

# A Core (table) insert: the ORM's bulk machinery costs more than the insert itself.
_INSERT_CHANGES = insert(table_of(ProfileChange))


async def insert_changes(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_INSERT_CHANGES, list(rows))


async def list_changes(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    before_id: uuid.UUID | None,
    limit: int,
) -> list[ProfileChange]:
    query = customer_history_query(
        ProfileChange,
        project_id=project_id,
        customer_ids=customer_ids,
        before_id=before_id,
        limit=limit,
    )
    return list(await session.scalars(query))


async def redact_changes(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    await redaction.redact_history(
        session, "cdp_redact_profile_changelog", project_id, customer_ids
    )
