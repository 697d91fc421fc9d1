"""Time passing on points: pending points become available, old points expire (FIFO).

Runs under the balance's lock, inside a write (ledger.py) or in the settling job.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict
from app.core.ids import new_id
from app.customers import rows as customer_rows
from app.loyalty import repository
from app.loyalty.models import PointAccount, PointBalance, PointLot, PointSpend, PointTransaction


async def settle(
    session: AsyncSession,
    actor: Actor | None,
    balance: PointBalance,
    account: PointAccount,
    now: datetime,
) -> int:
    """Release pending points now available and expire points past their expiry (FIFO).
    Runs under the balance's lock; returns how many lots it touched."""
    lots = await repository.due_lots(
        session, balance.customer_id, balance.account_id, now, lock=True
    )
    for lot in lots:
        if not lot.released and lot.available_at <= now:
            lot.released = True
            balance.pending -= lot.remaining
            balance.available += lot.remaining
        if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= now:
            await _expire(session, actor, balance, account, lot, now)
    if lots:
        balance.updated_at = now
        await session.flush()
    return len(lots)


async def _expire(
    session: AsyncSession,
    actor: Actor | None,
    balance: PointBalance,
    account: PointAccount,
    lot: PointLot,
    now: datetime,
) -> None:
    points = lot.remaining
    tx = PointTransaction(
        id=new_id(),
        project_id=lot.project_id,
        customer_id=lot.customer_id,
        origin_customer_id=lot.customer_id,
        account_id=lot.account_id,
        type="expiry",
        amount=-points,
        reason="expired",
        reference=str(lot.id),
        available_at=now,
        expires_at=None,
        reverses_id=None,
        touchpoint=actor.touchpoint if actor is not None else "system",
        initiator=actor.initiator if actor is not None else "expiry",
        request_id=actor.request_id if actor is not None else None,
        created_at=now,
    )
    await repository.add(session, tx)
    await repository.add(session, PointSpend(transaction_id=tx.id, lot_id=lot.id, amount=points))
    lot.remaining = Decimal(0)
    balance.available -= points
    balance.expired += points
    if actor is not None:
        await record_change(session, actor, account, tx)


async def record_change(
    session: AsyncSession, actor: Actor, account: PointAccount, tx: PointTransaction
) -> None:
    """Each transaction in the profile changelog, so the activity feed shows it too."""
    change = Change(
        "points",
        f"points.{account.code}",
        None,
        {"type": tx.type, "amount": str(tx.amount), "transaction_id": str(tx.id)},
    )
    await append_changes(session, tx.customer_id, [change], actor=actor)


async def settle_due(uow: UnitOfWork, *, now: datetime, batch: int = 500) -> int:
    """The settling job: release and expire everything due at `now`. Each balance is
    settled in its own short transaction, under the same locks as a write."""
    settled = 0
    while True:
        async with uow.read_only() as session:
            pairs = await repository.pairs_with_due_lots(session, now, batch)
        if not pairs:
            return settled
        for project_id, customer_id, account_id in pairs:
            async with uow:
                session = uow.session
                try:
                    await customer_rows.lock_active(session, project_id, [customer_id])
                except Conflict:
                    continue  # merged meanwhile: its lots moved to the survivor, next round
                account = next(
                    a for a in await repository.accounts(session, project_id) if a.id == account_id
                )
                balance = await repository.locked_balance(
                    session, project_id, customer_id, account_id, now
                )
                settled += await settle(session, None, balance, account, now)
        if len(pairs) < batch:
            return settled
