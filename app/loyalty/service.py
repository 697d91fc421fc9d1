"""Points: accounts, transactions, balances. Exact under concurrency and retries.

Every write locks the customer row, then the (customer, account) balance row; it first
settles the balance at `now` (pending points that became available are released, points
past their expiry are expired, FIFO), then applies its transaction. The balance row
always equals the ledger: available + pending = sum of the customer's transactions.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core import idempotency
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.core.ids import new_id
from app.customers import rows as customer_rows
from app.customers.models import Customer
from app.customers.views import surviving_view
from app.loyalty import repository
from app.loyalty.models import PointAccount, PointBalance, PointLot, PointSpend, PointTransaction
from app.loyalty.schemas import MAX_AMOUNT, TransactionCreate

# How a transaction is shown (the router's schema): the answer stored for replays.
Renderer = Callable[[PointTransaction, PointAccount], object]


async def create_account(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    code: str,
    name: str,
    precision: int,
    lifetime_days: int | None,
) -> PointAccount:
    async with uow:
        if await repository.account_by_code(uow.session, project_id, code) is not None:
            raise Conflict(f"A point account {code!r} already exists.")
        account = PointAccount(
            project_id=project_id,
            code=code,
            name=name,
            precision=precision,
            lifetime_days=lifetime_days,
        )
        await repository.add(uow.session, account)
        return account


async def list_accounts(uow: UnitOfWork, project_id: uuid.UUID) -> list[PointAccount]:
    async with uow.read_only() as session:
        return await repository.accounts(session, project_id)


async def _account(session: AsyncSession, project_id: uuid.UUID, code: str) -> PointAccount:
    account = await repository.account_by_code(session, project_id, code)
    if account is None:
        raise InvalidInput(
            f"No point account {code!r}.",
            errors=[FieldError(pointer="/account", message="Unknown account")],
        )
    return account


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
    async with uow:
        session = uow.session
        replay = await idempotency.claim(session, actor.project_id, idempotent)
        if replay is not None:
            return replay
        account = await _account(session, actor.project_id, body.account)
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
        await _record(session, actor, account, tx)
        response = StoredResponse(201, render(tx, account))
        await idempotency.remember(session, actor.project_id, idempotent, response)
        return response


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
        await _record(session, actor, account, tx)


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
                    FieldError(location="path", pointer="/transaction_id", message="Not reversible")
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
        await _record(session, actor, account, reversal)
        return reversal


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


async def _record(
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


@dataclass(frozen=True)
class Balance:
    account: PointAccount
    available: Decimal
    pending: Decimal
    earned: Decimal
    spent: Decimal
    expired: Decimal


async def customer_balances(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID, *, now: datetime
) -> list[Balance]:
    """Per account, as of `now`: pending points past their available_at count as
    available and points past their expiry as expired, even before the settling job wrote
    it (nobody has to call anything for time to pass)."""
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        accounts = {a.id: a for a in await repository.accounts(session, project_id)}
        result = []
        for balance in await repository.balances(session, project_id, [view.id]):
            due = await repository.due_lots(
                session, balance.customer_id, balance.account_id, now, lock=False
            )
            result.append(_as_of(balance, accounts[balance.account_id], due, now))
        return sorted(result, key=lambda b: b.account.code)


def _as_of(
    balance: PointBalance, account: PointAccount, due: list[PointLot], now: datetime
) -> Balance:
    available, pending, expired = balance.available, balance.pending, balance.expired
    for lot in due:
        if not lot.released and lot.available_at <= now:
            pending -= lot.remaining
            available += lot.remaining
        if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= now:
            available -= lot.remaining
            expired += lot.remaining
    return Balance(account, available, pending, balance.earned, balance.spent, expired)


async def list_transactions(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    account_code: str | None,
    types: list[str],
    since: datetime | None,
    until: datetime | None,
    before_id: uuid.UUID | None,
    limit: int,
) -> tuple[list[PointTransaction], dict[uuid.UUID, str]]:
    """Newest first; returns the page and account codes by id."""
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        accounts = {a.id: a.code for a in await repository.accounts(session, project_id)}
        account_id = None
        if account_code is not None:
            account_id = next((i for i, c in accounts.items() if c == account_code), None)
            if account_id is None:
                raise InvalidInput(
                    f"No point account {account_code!r}.",
                    errors=[
                        FieldError(location="query", pointer="/account", message="Unknown account")
                    ],
                )
        rows = await repository.transactions(
            session,
            project_id,
            [view.id, *view.merged_ids],
            account_id=account_id,
            types=types,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        )
        return rows, accounts


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


async def merge_into(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> dict[uuid.UUID, dict[str, str]]:
    """The points step of a merge: balances summed per account, every transaction and lot
    re-pointed to the target (each transaction keeps origin_customer_id)."""
    rows = await repository.balances(
        session, actor.project_id, [target.id, *(s.id for s in sources)]
    )
    targets = {b.account_id: b for b in rows if b.customer_id == target.id}
    moved: dict[uuid.UUID, dict[str, str]] = {s.id: {} for s in sources}
    for balance in rows:
        source_id = balance.customer_id
        if source_id == target.id:
            continue
        moved[source_id][str(balance.account_id)] = str(balance.available + balance.pending)
        kept = targets.get(balance.account_id)
        if kept is None:
            balance.customer_id = target.id
            targets[balance.account_id] = balance
            continue
        for name in ("available", "pending", "earned", "spent", "expired"):
            setattr(kept, name, getattr(kept, name) + getattr(balance, name))
        await repository.delete_balance(session, balance)
    await session.flush()
    for source in sources:
        await repository.repoint(session, actor.project_id, source.id, target.id)
    return moved
