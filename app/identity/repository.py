"""All SQL of identifiers, the ID changelog and the blocklist."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, Uuid, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import BigInteger

from app.core import redaction
from app.core.db import customer_history_query, table_of
from app.core.redaction import REDACTED
from app.identity.models import BlockedIdentifier, CustomerIdentifier, IdentifierHistory

# unnest() yields the keys in array order, so locks are taken in the order given: the
# shared key first, then the exclusive ones (one round trip).
_LOCK_KEYS = text(
    "SELECT CASE WHEN n = 1 THEN pg_advisory_xact_lock_shared(k) "
    "ELSE pg_advisory_xact_lock(k) END "
    "FROM unnest(array_prepend(CAST(:shared AS bigint), :keys)) WITH ORDINALITY AS t(k, n)"
).bindparams(bindparam("keys", type_=ARRAY(BigInteger)), bindparam("shared", type_=BigInteger))

_LOCK_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)").bindparams(
    bindparam("key", type_=BigInteger)
)


async def advisory_lock(session: AsyncSession, *, shared: int, keys: Sequence[int]) -> None:
    """Take `shared` in share mode, then `keys` exclusively, until the transaction ends."""
    await session.execute(_LOCK_KEYS, {"shared": shared, "keys": list(keys)})


async def advisory_lock_exclusive(session: AsyncSession, key: int) -> None:
    await session.execute(_LOCK_EXCLUSIVE, {"key": key})


# One static statement for any number of pairs (no per-size recompilation).
_OWNERS = text(
    "SELECT i.kind, i.value, i.customer_id FROM customer_identifiers i "
    "JOIN unnest(:kinds, :values) AS wanted(kind, value) "
    "ON i.kind = wanted.kind AND i.value = wanted.value "
    "WHERE i.project_id = :project_id"
).bindparams(
    bindparam("kinds", type_=ARRAY(Text)),
    bindparam("values", type_=ARRAY(Text)),
    bindparam("project_id", type_=Uuid),
)


async def find_owners(
    session: AsyncSession, project_id: uuid.UUID, pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, str, uuid.UUID]]:
    if not pairs:
        return []
    parameters = {
        "project_id": project_id,
        "kinds": [kind for kind, _ in pairs],
        "values": [value for _, value in pairs],
    }
    return [
        (row.kind, row.value, row.customer_id) for row in await session.execute(_OWNERS, parameters)
    ]


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


_identifiers = table_of(CustomerIdentifier)
_history = table_of(IdentifierHistory)
# Core (table) statements: the ORM's bulk machinery costs more than the insert itself.
_INSERT_IDENTIFIERS = insert(_identifiers)
_INSERT_HISTORY = insert(_history)


async def insert_identifiers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_INSERT_IDENTIFIERS, list(rows))


async def delete_identifier(
    session: AsyncSession, project_id: uuid.UUID, kind: str, value: str
) -> None:
    await session.execute(
        delete(_identifiers).where(
            _identifiers.c.project_id == project_id,
            _identifiers.c.kind == kind,
            _identifiers.c.value == value,
        )
    )


async def reassign_identifier(
    session: AsyncSession, project_id: uuid.UUID, kind: str, value: str, customer_id: uuid.UUID
) -> None:
    await session.execute(
        update(_identifiers)
        .where(
            _identifiers.c.project_id == project_id,
            _identifiers.c.kind == kind,
            _identifiers.c.value == value,
        )
        .values(customer_id=customer_id)
    )


async def hand_over_identifier(
    session: AsyncSession,
    project_id: uuid.UUID,
    identifier_id: uuid.UUID,
    *,
    to_customer: uuid.UUID,
    origin_customer: uuid.UUID,
) -> None:
    """A merge moves an identifier and remembers where it came from (for a revert)."""
    await session.execute(
        update(_identifiers)
        .where(_identifiers.c.project_id == project_id, _identifiers.c.id == identifier_id)
        .values(customer_id=to_customer, origin_customer_id=origin_customer)
    )


async def insert_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_INSERT_HISTORY, list(rows))


async def list_history(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    before_id: uuid.UUID | None,
    limit: int,
) -> list[IdentifierHistory]:
    query = customer_history_query(
        IdentifierHistory,
        project_id=project_id,
        customer_ids=customer_ids,
        before_id=before_id,
        limit=limit,
    )
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


async def erase_identifiers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[tuple[str, str]]:
    """Delete the customers' identifiers (free for anyone again); what they were."""
    result = await session.execute(
        delete(CustomerIdentifier)
        .where(
            CustomerIdentifier.project_id == project_id,
            CustomerIdentifier.customer_id.in_(customer_ids),
        )
        .returning(CustomerIdentifier.kind, CustomerIdentifier.value)
    )
    return [(kind, value) for kind, value in result]


async def redact_history(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[str]:
    """Replace the values in the customers' ID changelog; the values it held."""
    result = await session.execute(
        select(IdentifierHistory.value, IdentifierHistory.replaced_by).where(
            IdentifierHistory.project_id == project_id,
            IdentifierHistory.customer_id.in_(customer_ids),
        )
    )
    values = {v for row in result for v in row if v is not None and v != REDACTED}
    await redaction.redact_history(
        session, "cdp_redact_identifier_history", project_id, customer_ids
    )
    return sorted(values)
