"""All SQL of identifiers, the ID changelog and the blocklist."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import BigInteger

from app.identity.models import BlockedIdentifier, CustomerIdentifier, IdentifierHistory

# unnest() yields the keys in array order, so locks are taken in the order given.
_LOCK_KEYS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(:keys) AS k").bindparams(
    bindparam("keys", type_=ARRAY(BigInteger))
)


async def advisory_lock(session: AsyncSession, keys: Sequence[int]) -> None:
    if keys:
        await session.execute(_LOCK_KEYS, {"keys": list(keys)})


async def find_owners(
    session: AsyncSession, project_id: uuid.UUID, pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, str, uuid.UUID]]:
    if not pairs:
        return []
    query = select(
        CustomerIdentifier.kind, CustomerIdentifier.value, CustomerIdentifier.customer_id
    ).where(
        CustomerIdentifier.project_id == project_id,
        tuple_(CustomerIdentifier.kind, CustomerIdentifier.value).in_(list(pairs)),
    )
    return [(row.kind, row.value, row.customer_id) for row in await session.execute(query)]


async def identifiers_of(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[CustomerIdentifier]:
    if not customer_ids:
        return []
    query = (
        select(CustomerIdentifier)
        .where(
            CustomerIdentifier.project_id == project_id,
            CustomerIdentifier.customer_id.in_(customer_ids),
        )
        .order_by(CustomerIdentifier.id)
    )
    return list(await session.scalars(query))


async def insert_identifiers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(CustomerIdentifier), list(rows))


async def delete_identifier(
    session: AsyncSession, project_id: uuid.UUID, kind: str, value: str
) -> None:
    await session.execute(
        delete(CustomerIdentifier).where(
            CustomerIdentifier.project_id == project_id,
            CustomerIdentifier.kind == kind,
            CustomerIdentifier.value == value,
        )
    )


async def reassign_identifier(
    session: AsyncSession, project_id: uuid.UUID, kind: str, value: str, customer_id: uuid.UUID
) -> None:
    await session.execute(
        update(CustomerIdentifier)
        .where(
            CustomerIdentifier.project_id == project_id,
            CustomerIdentifier.kind == kind,
            CustomerIdentifier.value == value,
        )
        .values(customer_id=customer_id)
    )


async def insert_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(IdentifierHistory), list(rows))


async def list_history(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    before_id: uuid.UUID | None,
    limit: int,
) -> list[IdentifierHistory]:
    query = (
        select(IdentifierHistory)
        .where(
            IdentifierHistory.project_id == project_id,
            IdentifierHistory.customer_id.in_(customer_ids),
        )
        .order_by(IdentifierHistory.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(IdentifierHistory.id < before_id)
    return list(await session.scalars(query))


async def list_blocked(session: AsyncSession, project_id: uuid.UUID) -> list[BlockedIdentifier]:
    query = (
        select(BlockedIdentifier)
        .where(BlockedIdentifier.project_id == project_id)
        .order_by(BlockedIdentifier.id)
    )
    return list(await session.scalars(query))


async def add_blocked(session: AsyncSession, entry: BlockedIdentifier) -> BlockedIdentifier:
    session.add(entry)
    await session.flush()
    await session.refresh(entry)
    return entry


async def delete_blocked(session: AsyncSession, project_id: uuid.UUID, entry_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(BlockedIdentifier)
        .where(BlockedIdentifier.project_id == project_id, BlockedIdentifier.id == entry_id)
        .returning(BlockedIdentifier.id)
    )
    return result.first() is not None
