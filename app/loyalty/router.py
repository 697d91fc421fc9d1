"""HTTP endpoints of points: accounts, a customer's balances and ledger."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, status
from fastapi.responses import JSONResponse, Response

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import ClockDep, UnitOfWorkDep
from app.core.idempotency import IdempotentRequest
from app.core.pagination import (
    DEFAULT_PAGE_LIMIT,
    Page,
    PageCursor,
    PageLimit,
    decode_id_cursor,
    split_page,
)
from app.core.problems import problem_responses
from app.loyalty import ledger, service
from app.loyalty.models import PointAccount, PointTransaction
from app.loyalty.schemas import (
    AccountCreate,
    AccountRead,
    BalanceRead,
    TransactionCreate,
    TransactionRead,
    TransactionType,
)
from app.projects.auth import AdminDep, require_actor, require_scope

router = APIRouter(tags=["loyalty"], responses=problem_responses(401, 403, 404, 422, 429))
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
LoyaltyWriterDep = Annotated[Actor, Depends(require_actor(Scope.LOYALTY_WRITE))]


def _transaction_read(tx: PointTransaction, account_code: str) -> TransactionRead:
    return TransactionRead(
        id=tx.id,
        customer_id=tx.customer_id,
        origin_customer_id=tx.origin_customer_id,
        account=account_code,
        type=tx.type,
        amount=tx.amount,
        reason=tx.reason,
        reference=tx.reference,
        available_at=tx.available_at,
        expires_at=tx.expires_at,
        reverses_id=tx.reverses_id,
        touchpoint=tx.touchpoint,
        initiator=tx.initiator,
        created_at=tx.created_at,
    )


def _rendered(tx: PointTransaction, account: PointAccount) -> object:
    return _transaction_read(tx, account.code).model_dump(mode="json")


@router.post(
    "/v1/point-accounts",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="loyalty_create_account",
)
async def loyalty_create_account(
    body: AccountCreate, uow: UnitOfWorkDep, admin: AdminDep
) -> AccountRead:
    """Create a point account (a kind of points, with its precision and lifetime)."""
    account = await service.create_account(
        uow,
        admin.project_id,
        code=body.code,
        name=body.name,
        precision=body.precision,
        lifetime_days=body.lifetime_days,
    )
    return AccountRead.model_validate(account)


@router.get("/v1/point-accounts", operation_id="loyalty_list_accounts")
async def loyalty_list_accounts(uow: UnitOfWorkDep, principal: ReaderDep) -> list[AccountRead]:
    """List the project's point accounts."""
    return [
        AccountRead.model_validate(a)
        for a in await service.list_accounts(uow, principal.project_id)
    ]


@router.post(
    "/v1/customers/{customer_id}/points/transactions",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionRead,
    responses=problem_responses(409),
    operation_id="loyalty_create_transaction",
)
async def loyalty_create_transaction(
    customer_id: uuid.UUID,
    body: TransactionCreate,
    uow: UnitOfWorkDep,
    actor: LoyaltyWriterDep,
    clock: ClockDep,
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=255,
            description="Required: a retry with the same key and body returns the first "
            "answer; another body with the same key is a 409.",
        ),
    ],
) -> Response:
    """Accrue, redeem or adjust points; a redemption beyond the available balance is a 409."""
    idempotent = IdempotentRequest.of(
        idempotency_key,
        "loyalty_create_transaction",
        {"customer_id": str(customer_id), **body.model_dump(mode="json")},
    )
    stored = await ledger.create_transaction(
        uow, actor, customer_id, body, now=clock.now(), idempotent=idempotent, render=_rendered
    )
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.post(
    "/v1/customers/{customer_id}/points/transactions/{transaction_id}/reverse",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="loyalty_reverse_transaction",
)
async def loyalty_reverse_transaction(
    customer_id: uuid.UUID,
    transaction_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: LoyaltyWriterDep,
    clock: ClockDep,
) -> TransactionRead:
    """Reverse an accrual or a redemption, once; the reversal is a transaction of its own."""
    reversal = await ledger.reverse_transaction(
        uow, actor, customer_id, transaction_id, now=clock.now()
    )
    accounts = {a.id: a.code for a in await service.list_accounts(uow, actor.project_id)}
    return _transaction_read(reversal, accounts[reversal.account_id])


@router.get("/v1/customers/{customer_id}/points", operation_id="loyalty_get_balances")
async def loyalty_get_balances(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep, clock: ClockDep
) -> list[BalanceRead]:
    """The customer's balance per account, as of now."""
    balances = await service.customer_balances(
        uow, principal.project_id, customer_id, now=clock.now()
    )
    return [
        BalanceRead(
            account=b.account.code,
            available=b.available,
            pending=b.pending,
            earned=b.earned,
            spent=b.spent,
            expired=b.expired,
        )
        for b in balances
    ]


@router.get(
    "/v1/customers/{customer_id}/points/transactions", operation_id="loyalty_list_transactions"
)
async def loyalty_list_transactions(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    account: Annotated[str | None, Query(max_length=64)] = None,
    type_filter: Annotated[list[TransactionType] | None, Query(alias="type")] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> Page[TransactionRead]:
    """The ledger, newest first, filtered by account, type and time."""
    rows, accounts = await service.list_transactions(
        uow,
        principal.project_id,
        customer_id,
        account_code=account,
        types=list(type_filter or []),
        since=since,
        until=until,
        before_id=decode_id_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(
        items=[_transaction_read(r, accounts[r.account_id]) for r in items], next_cursor=next_cursor
    )
