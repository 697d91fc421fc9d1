"""All SQL of point accounts, the ledger, lots, spends and balances."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import customer_history_query, table_of
from app.core.ids import new_id
from app.core.redaction import redacted_text
from app.loyalty.models import PointAccount, PointBalance, PointLot, PointSpend, PointTransaction


async def add(
    session: AsyncSession, row: PointAccount | PointTransaction | PointLot | PointSpend
) -> None:
    session.add(row)
    await session.flush()


async def account_by_code(
    session: AsyncSession, project_id: uuid.UUID, code: str
) -> PointAccount | None:
    query = select(PointAccount).where(
        PointAccount.project_id == project_id, PointAccount.code == code
    )
    return (await session.scalars(query)).one_or_none()


async def accounts(session: AsyncSession, project_id: uuid.UUID) -> list[PointAccount]:
    query = (
        select(PointAccount)
        .where(PointAccount.project_id == project_id)
        .order_by(PointAccount.code)
    )
    return list(await session.scalars(query))


async def locked_balance(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    account_id: uuid.UUID,
    now: datetime,
) -> PointBalance:
    """The balance row, created if missing, locked for the rest of the transaction."""
    await session.execute(
        insert(table_of(PointBalance))
        .values(
            id=new_id(),
            project_id=project_id,
            customer_id=customer_id,
            account_id=account_id,
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )
    query = (
        select(PointBalance)
        .where(
            PointBalance.project_id == project_id,
            PointBalance.customer_id == customer_id,
            PointBalance.account_id == account_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one()


async def balances(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[PointBalance]:
    query = select(PointBalance).where(
        PointBalance.project_id == project_id, PointBalance.customer_id.in_(customer_ids)
    )
    return list(await session.scalars(query))


async def due_lots(
    session: AsyncSession,
    customer_id: uuid.UUID,
    account_id: uuid.UUID,
    now: datetime,
    *,
    lock: bool,
) -> list[PointLot]:
    """Lots to release (pending, now available) or to expire, soonest expiry first."""
    query = (
        select(PointLot)
        .where(
            PointLot.customer_id == customer_id,
            PointLot.account_id == account_id,
            or_(
                (PointLot.released.is_(False)) & (PointLot.available_at <= now),
                (PointLot.remaining > 0) & (PointLot.expires_at <= now),
            ),
        )
        .order_by(PointLot.expires_at.asc().nulls_last(), PointLot.id)
    )
    if lock:
        query = query.with_for_update()
    return list(await session.scalars(query))


async def spendable_lots(
    session: AsyncSession, customer_id: uuid.UUID, account_id: uuid.UUID
) -> list[PointLot]:
    """Released lots with points left, in spending order: soonest expiry first (FIFO)."""
    query = (
        select(PointLot)
        .where(
            PointLot.customer_id == customer_id,
            PointLot.account_id == account_id,
            PointLot.released.is_(True),
            PointLot.remaining > 0,
        )
        .order_by(PointLot.expires_at.asc().nulls_last(), PointLot.id)
        .with_for_update()
    )
    return list(await session.scalars(query))


async def lot(session: AsyncSession, lot_id: uuid.UUID) -> PointLot | None:
    query = select(PointLot).where(PointLot.id == lot_id).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def spends_of(session: AsyncSession, transaction_id: uuid.UUID) -> list[PointSpend]:
    query = select(PointSpend).where(PointSpend.transaction_id == transaction_id)
    return list(await session.scalars(query))


async def transaction(
    session: AsyncSession, project_id: uuid.UUID, transaction_id: uuid.UUID
) -> PointTransaction | None:
    query = select(PointTransaction).where(
        PointTransaction.project_id == project_id, PointTransaction.id == transaction_id
    )
    return (await session.scalars(query)).one_or_none()


async def reversal_of(session: AsyncSession, transaction_id: uuid.UUID) -> PointTransaction | None:
    query = select(PointTransaction).where(PointTransaction.reverses_id == transaction_id)
    return (await session.scalars(query)).one_or_none()


async def transactions(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    *,
    account_id: uuid.UUID | None,
    types: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[PointTransaction]:
    query = customer_history_query(
        PointTransaction,
        project_id=project_id,
        customer_ids=customer_ids,
        before_id=before_id,
        limit=limit,
    )
    if account_id is not None:
        query = query.where(PointTransaction.account_id == account_id)
    if types:
        query = query.where(PointTransaction.type.in_(types))
    if since is not None:
        query = query.where(PointTransaction.created_at >= since)
    if until is not None:
        query = query.where(PointTransaction.created_at < until)
    return list(await session.scalars(query))


async def pairs_with_due_lots(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
    """(project, customer, account) with points to release or expire: the settling job's work."""
    query = (
        select(PointLot.project_id, PointLot.customer_id, PointLot.account_id)
        .where(
            or_(
                (PointLot.released.is_(False)) & (PointLot.available_at <= now),
                (PointLot.remaining > 0) & (PointLot.expires_at <= now),
            )
        )
        .distinct()
        .limit(limit)
    )
    return [(r.project_id, r.customer_id, r.account_id) for r in await session.execute(query)]


async def repoint(
    session: AsyncSession, project_id: uuid.UUID, source_id: uuid.UUID, target_id: uuid.UUID
) -> int:
    """A merge: the source's transactions and lots now belong to the target."""
    moved = await session.execute(
        update(table_of(PointTransaction))
        .where(
            table_of(PointTransaction).c.project_id == project_id,
            table_of(PointTransaction).c.customer_id == source_id,
        )
        .values(customer_id=target_id)
    )
    await session.execute(
        update(table_of(PointLot))
        .where(
            table_of(PointLot).c.project_id == project_id,
            table_of(PointLot).c.customer_id == source_id,
        )
        .values(customer_id=target_id)
    )
    return int(moved.rowcount or 0)  # type: ignore[attr-defined]


async def delete_balance(session: AsyncSession, balance: PointBalance) -> None:
    await session.delete(balance)
    await session.flush()


def zero() -> Decimal:
    return Decimal(0)


async def redact_transactions(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(
        update(PointTransaction)
        .where(
            PointTransaction.project_id == project_id,
            PointTransaction.customer_id.in_(customer_ids),
        )
        .values(
            reason=redacted_text(PointTransaction.reason),
            reference=redacted_text(PointTransaction.reference),
        )
        .execution_options(synchronize_session=False)
    )
