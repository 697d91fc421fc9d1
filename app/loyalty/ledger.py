"""Writing points: accrue, redeem, adjust, reverse. Exact under concurrency and retries.

Every write locks the customer row, then the (customer, account) balance row; it first
settles the balance at `now` (settlement.py), then applies its transaction. The balance
row always equals the ledger: available + pending = sum of the customer's transactions.
"""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import idempotency
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.core.ids import new_id
from app.core.retry import with_retries
from app.customers import rows as customer_rows
from app.loyalty import repository
from app.loyalty.models import PointAccount, PointBalance, PointLot, PointSpend, PointTransaction
from app.loyalty.schemas import MAX_AMOUNT, TransactionCreate
from app.loyalty.service import account_named
from app.loyalty.settlement import record_change, settle

# How a transaction is shown (the router's schema): the answer stored for replays.
Renderer = Callable[[PointTransaction, PointAccount], object]


def _signed_amount(body: TransactionCreate, account: PointAccount) -> Decimal:
    """The amount as the ledger stores it (negative takes points away), or a 422."""
    amount = body.amount
    problem = None
    if amount == 0:
        problem = "Must not be zero"
    elif body.type != "adjustment" and amount < 0:
        problem = f"A {body.type} amount is positive (the type says which way it goes)"
    elif abs(amount) > MAX_AMOUNT:
        problem = f"At most {MAX_AMOUNT}"
    elif _decimal_places(amount) > account.precision:
        problem = f"At most {account.precision} decimal places for {account.code}"
    if problem is not None:
        raise InvalidInput(
            "The amount is not valid.", errors=[FieldError(pointer="/amount", message=problem)]
        )
    return -amount if body.type == "redemption" else amount


def _decimal_places(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


async def create_transaction(
    uow: UnitOfWork,
    actor: Actor,
    customer_id: uuid.UUID,
    body: TransactionCreate,
    *,
    now: datetime,
    idempotent: IdempotentRequest,
    render: Renderer,
) -> StoredResponse:
    """Accrue, redeem or adjust, exactly once per Idempotency-Key."""

    async def attempt() -> StoredResponse:
        async with uow:
            session = uow.session
            replay = await idempotency.claim(session, actor.project_id, idempotent)
            if replay is not None:
                return replay
            account = await account_named(session, actor.project_id, body.account)
            amount = _signed_amount(body, account)
            _check_dates(body, now)
            survivor = await customer_rows.survivor_id(session, actor.project_id, customer_id)
            await customer_rows.lock_active(session, actor.project_id, [survivor])
            balance = await repository.locked_balance(
                session, actor.project_id, survivor, account.id, now
            )
            await settle(session, actor, balance, account, now)
            tx = _transaction(actor, survivor, account, body, amount, now)
            if amount > 0:
                await _credit(
                    session,
                    tx,
                    account,
                    balance,
                    now,
                    available_at=body.available_at,
                    expires_at=body.expires_at,
                )
            else:
                await _debit(session, tx, balance, -amount)
            await record_change(session, actor, account, tx)
            response = StoredResponse(201, render(tx, account))
            await idempotency.remember(session, actor.project_id, idempotent, response)
            return response

    return await with_retries(attempt)


def _check_dates(body: TransactionCreate, now: datetime) -> None:
    errors: list[FieldError] = []
    if body.type != "accrual" and (body.available_at is not None or body.expires_at is not None):
        errors.append(
            FieldError(pointer="/type", message="Only accruals take available_at / expires_at")
        )
    start = body.available_at or now
    if body.expires_at is not None and body.expires_at <= start:
        errors.append(
            FieldError(pointer="/expires_at", message="Must be after available_at (or now)")
        )
    if errors:
        raise InvalidInput("The dates are not valid.", errors=errors)


def _transaction(
    actor: Actor,
    customer_id: uuid.UUID,
    account: PointAccount,
    body: TransactionCreate,
    amount: Decimal,
    now: datetime,
) -> PointTransaction:
    return PointTransaction(
        id=new_id(),
        project_id=actor.project_id,
        customer_id=customer_id,
        origin_customer_id=customer_id,
        account_id=account.id,
        type=body.type,
        amount=amount,
        reason=body.reason,
        reference=body.reference,
        available_at=body.available_at or now,
        expires_at=None,
        reverses_id=None,
        touchpoint=actor.touchpoint,
        initiator=actor.initiator,
        request_id=actor.request_id,
        created_at=now,
    )


async def _credit(
    session: AsyncSession,
    tx: PointTransaction,
    account: PointAccount,
    balance: PointBalance,
    now: datetime,
    *,
    available_at: datetime | None,
    expires_at: datetime | None,
) -> None:
    start = available_at or now
    if expires_at is None and account.lifetime_days is not None:
        expires_at = start + timedelta(days=account.lifetime_days)
    tx.available_at, tx.expires_at = start, expires_at
    await repository.add(session, tx)
    released = start <= now
    lot = PointLot(
        id=tx.id,
        project_id=tx.project_id,
        customer_id=tx.customer_id,
        account_id=tx.account_id,
        amount=tx.amount,
        remaining=tx.amount,
        available_at=start,
        expires_at=expires_at,
        released=released,
    )
    await repository.add(session, lot)
    if released:
        balance.available += tx.amount
    else:
        balance.pending += tx.amount
    if tx.type == "accrual":
        balance.earned += tx.amount
    balance.updated_at = now


async def _debit(
    session: AsyncSession, tx: PointTransaction, balance: PointBalance, points: Decimal
) -> None:
    if balance.available < points:
        raise Conflict(f"Not enough points: {balance.available} available, {points} asked.")
    await repository.add(session, tx)
    left = points
    for lot in await repository.spendable_lots(session, tx.customer_id, tx.account_id):
        taken = min(lot.remaining, left)
        lot.remaining -= taken
        await repository.add(session, PointSpend(transaction_id=tx.id, lot_id=lot.id, amount=taken))
        left -= taken
        if left == 0:
            break
    if left != 0:
        raise RuntimeError("balance and lots disagree")  # the invariant would be broken
    balance.available -= points
    if tx.type == "redemption":
        balance.spent += points
    balance.updated_at = tx.created_at


async def reverse_transaction(
    uow: UnitOfWork,
    actor: Actor,
    customer_id: uuid.UUID,
    transaction_id: uuid.UUID,
    *,
    now: datetime,
) -> PointTransaction:
    """Undo an accrual (if none of its points were spent or expired) or a redemption
    (its points go back to the very lots they came from). Once per transaction."""

    async def attempt() -> PointTransaction:
        async with uow:
            session = uow.session
            survivor = await customer_rows.survivor_id(session, actor.project_id, customer_id)
            await customer_rows.lock_active(session, actor.project_id, [survivor])
            original = await repository.transaction(session, actor.project_id, transaction_id)
            if original is None or original.customer_id != survivor:
                raise NotFound(f"No points transaction {transaction_id} for this customer.")
            if original.type in ("expiry", "reversal"):
                raise InvalidInput(
                    f"A {original.type} cannot be reversed.",
                    errors=[
                        FieldError(
                            location="path", pointer="/transaction_id", message="Not reversible"
                        )
                    ],
                )
            if await repository.reversal_of(session, original.id) is not None:
                raise Conflict("This transaction was already reversed.")
            account = next(
                a
                for a in await repository.accounts(session, actor.project_id)
                if a.id == original.account_id
            )
            balance = await repository.locked_balance(
                session, actor.project_id, survivor, account.id, now
            )
            await settle(session, actor, balance, account, now)
            reversal = PointTransaction(
                id=new_id(),
                project_id=actor.project_id,
                customer_id=survivor,
                origin_customer_id=survivor,
                account_id=account.id,
                type="reversal",
                amount=-original.amount,
                reason=f"reversal of {original.type}",
                reference=str(original.id),
                available_at=now,
                expires_at=None,
                reverses_id=original.id,
                touchpoint=actor.touchpoint,
                initiator=actor.initiator,
                request_id=actor.request_id,
                created_at=now,
            )
            if original.amount > 0:
                await _take_back_credit(session, original, reversal, balance)
            else:
                await _give_back_debit(session, original, reversal, balance)
            await settle(session, actor, balance, account, now)
            await record_change(session, actor, account, reversal)
            return reversal

    return await with_retries(attempt)


async def _take_back_credit(
    session: AsyncSession,
    original: PointTransaction,
    reversal: PointTransaction,
    balance: PointBalance,
) -> None:
    lot = await repository.lot(session, original.id)
    if lot is None or lot.remaining != lot.amount:
        raise Conflict("Some of these points were spent or expired; reverse those first.")
    await repository.add(session, reversal)
    await repository.add(
        session, PointSpend(transaction_id=reversal.id, lot_id=lot.id, amount=lot.amount)
    )
    if lot.released:
        balance.available -= lot.amount
    else:
        balance.pending -= lot.amount
    if original.type == "accrual":
        balance.earned -= lot.amount
    lot.remaining = Decimal(0)
    balance.updated_at = reversal.created_at


async def _give_back_debit(
    session: AsyncSession,
    original: PointTransaction,
    reversal: PointTransaction,
    balance: PointBalance,
) -> None:
    await repository.add(session, reversal)
    for spend in await repository.spends_of(session, original.id):
        lot = await repository.lot(session, spend.lot_id)
        if lot is None:
            raise RuntimeError("a spend without its lot")
        lot.remaining += spend.amount
        balance.available += spend.amount
    if original.type == "redemption":
        balance.spent += original.amount  # original.amount is negative
    balance.updated_at = reversal.created_at
    await session.flush()
