"""Points: accounts, balances as of now, the ledger's pages, and the merge step.

Writing to the ledger is in ledger.py; releasing and expiring points in settlement.py.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput
from app.customers.models import Customer
from app.customers.views import surviving_view
from app.loyalty import repository
from app.loyalty.models import PointAccount, PointBalance, PointLot, PointTransaction


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


async def account_named(session: AsyncSession, project_id: uuid.UUID, code: str) -> PointAccount:
    account = await repository.account_by_code(session, project_id, code)
    if account is None:
        raise InvalidInput(
            f"No point account {code!r}.",
            errors=[FieldError(pointer="/account", message="Unknown account")],
        )
    return account


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


async def account_ids(session: AsyncSession, project_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """Point account ids by code, in the caller's transaction (segment rules name them)."""
    return {a.code: a.id for a in await repository.accounts(session, project_id)}


async def erase(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """The points step of an erase: amounts, lots and balances stay (the ledger still
    sums), free-text reasons and references do not."""
    await repository.redact_transactions(session, project_id, customer_ids)
