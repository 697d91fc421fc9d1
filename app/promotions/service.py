"""Promo codes and prizes: pools of codes uploaded in bulk and issued one at a time,
redeemed by the customer they were issued to; prizes given in campaigns and claimed.

A code goes available -> issued (to one customer) -> redeemed; `void` is reserved for
codes taken out of circulation. Lock order, as everywhere: the customer's row first
(`customers.rows.lock_active`), then code or prize rows. Issuing takes the pool's oldest
available code with FOR UPDATE SKIP LOCKED, so concurrent issuers never wait on the same
row and never get the same code. Every change to a customer's codes or prizes is in
their profile changelog and moves their version.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog.service import Change, append_changes
from app.core import idempotency
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, NotFound
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.core.ids import new_id
from app.customers import rows as customer_rows
from app.customers.models import Customer
from app.promotions import codes as code_rules
from app.promotions import presenters, repository
from app.promotions.codes import CodeBatch
from app.promotions.models import CODE_STATUSES, Prize, PromoCode, PromoPool
from app.promotions.schemas import PoolCounts, UploadResult

# Rows per INSERT of an upload: bounded statements, however large the upload.
_UPLOAD_CHUNK = 20_000


@dataclass(frozen=True)
class PoolWithCounts:
    pool: PromoPool
    counts: PoolCounts


async def create_pool(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    key: str,
    name: str,
    description: str | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> PromoPool:
    async with uow:
        if await repository.pool_by_key(uow.session, project_id, key) is not None:
            raise Conflict(f"A promo pool {key!r} already exists.")
        pool = PromoPool(
            id=new_id(),
            project_id=project_id,
            key=key,
            name=name,
            description=description,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        return await repository.add_pool(uow.session, pool)


async def list_pools(
    uow: UnitOfWork, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[PromoPool]:
    async with uow.read_only() as session:
        return await repository.pools(session, project_id, after_id=after_id, limit=limit)


async def get_pool(uow: UnitOfWork, project_id: uuid.UUID, key: str) -> PoolWithCounts:
    async with uow.read_only() as session:
        pool = await _pool(session, project_id, key)
        counts = await repository.code_counts(session, pool.id)
        return PoolWithCounts(pool, PoolCounts(**{s: counts.get(s, 0) for s in CODE_STATUSES}))


async def _pool(session: AsyncSession, project_id: uuid.UUID, key: str) -> PromoPool:
    pool = await repository.pool_by_key(session, project_id, key)
    if pool is None:
        raise NotFound(f"No promo pool {key!r}.")
    return pool


async def upload_codes(
    uow: UnitOfWork, project_id: uuid.UUID, pool_key: str, codes: list[str]
) -> UploadResult:
    """Store the valid codes of a JSON list; report the invalid ones (by index)."""
    return await _store_batch(uow, project_id, pool_key, code_rules.batch_of_list(codes))


async def upload_code_file(
    uow: UnitOfWork, project_id: uuid.UUID, pool_key: str, chunks: AsyncIterator[bytes]
) -> UploadResult:
    """Store the valid codes of a file, one per line; report the invalid ones (by line)."""
    async with uow.read_only() as session:
        # A missing pool is a 404 before the file is read.
        await _pool(session, project_id, pool_key)
    return await _store_batch(uow, project_id, pool_key, await code_rules.batch_of_file(chunks))


async def _store_batch(
    uow: UnitOfWork, project_id: uuid.UUID, pool_key: str, batch: CodeBatch
) -> UploadResult:
    # Ids in upload order (the order codes are issued in); rows inserted in code order, so
    # two uploads sharing codes wait for each other in the same order and cannot deadlock.
    rows = sorted(((new_id(), code) for code in batch.codes), key=lambda row: row[1])
    async with uow:
        session = uow.session
        pool = await _pool(session, project_id, pool_key)
        added = 0
        for start in range(0, len(rows), _UPLOAD_CHUNK):
            chunk = rows[start : start + _UPLOAD_CHUNK]
            added += await repository.insert_codes(session, project_id, pool.id, chunk)
    return presenters.upload_result(batch, added)


def _refuse_outside_window(pool: PromoPool, now: datetime, *, redeeming: bool) -> None:
    if not redeeming and pool.valid_from is not None and now < pool.valid_from:
        raise Conflict(
            f"The promo pool {pool.key!r} opens at {pool.valid_from.isoformat()}; "
            "no code is issued before."
        )
    if pool.valid_until is not None and now >= pool.valid_until:
        action = "redeemed" if redeeming else "issued"
        raise Conflict(
            f"The promo pool {pool.key!r} closed at {pool.valid_until.isoformat()}; "
            f"its codes are no longer {action}."
        )


async def _lock_customer(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> Customer:
    """The customer (or its merge survivor), locked; 404 outside the project or erased."""
    survivor = await customer_rows.survivor_id(session, project_id, customer_id)
    locked = await customer_rows.lock_active(session, project_id, [survivor])
    if survivor not in locked:
        raise NotFound(f"No customer {customer_id}.")
    return locked[survivor]


async def _record(session: AsyncSession, actor: Actor, customer: Customer, change: Change) -> None:
    await append_changes(session, customer.id, [change], actor=actor)
    customer_rows.mark_changed(customer)
    await session.flush()


async def issue_code(
    uow: UnitOfWork,
    actor: Actor,
    customer_id: uuid.UUID,
    pool_key: str,
    *,
    idempotent: IdempotentRequest,
) -> StoredResponse:
    """Give the customer the pool's next free code, exactly once per Idempotency-Key;
    409 when the pool has none left or is outside its validity window."""
    now = datetime.now(UTC)

    async def issue(session: AsyncSession) -> StoredResponse:
        pool = await _pool(session, actor.project_id, pool_key)
        _refuse_outside_window(pool, now, redeeming=False)
        customer = await _lock_customer(session, actor.project_id, customer_id)
        code = await _next_free_code(session, actor.project_id, pool)
        code.status = "issued"
        code.customer_id = customer.id
        code.origin_customer_id = customer.id
        code.issued_at = now
        change = Change(
            "promo_code_issued",
            f"promo_codes.{code.code}",
            None,
            {"pool": pool.key, "status": "issued"},
        )
        await _record(session, actor, customer, change)
        return StoredResponse(201, presenters.code_body(code, pool.key))

    return await idempotency.once_per_key(uow, actor.project_id, idempotent, issue)


async def _next_free_code(
    session: AsyncSession, project_id: uuid.UUID, pool: PromoPool
) -> PromoCode:
    code = await repository.next_free_code(session, project_id, pool.id, skip_locked=True)
    if code is None:
        # Every available code may be held by an issuer that has not committed yet and
        # could still roll back: wait for them before calling the pool empty.
        code = await repository.next_free_code(session, project_id, pool.id, skip_locked=False)
    if code is None:
        raise Conflict(
            f"The promo pool {pool.key!r} has no free code left; upload more codes to it."
        )
    return code


async def redeem_code(
    uow: UnitOfWork,
    actor: Actor,
    code_value: str,
    *,
    customer_id: uuid.UUID,
    order_reference: str | None,
    idempotent: IdempotentRequest | None,
) -> StoredResponse:
    """Redeem a code issued to this customer (or to one merged into them). Refused with a
    409, changing nothing: a code never issued, issued to someone else, already redeemed,
    void, or of a pool past its validity."""
    now = datetime.now(UTC)

    async def redeem(session: AsyncSession) -> StoredResponse:
        customer = await _lock_customer(session, actor.project_id, customer_id)
        code = await repository.lock_code(session, actor.project_id, code_value)
        if code is None:
            raise NotFound(f"No promo code {code_value!r}.")
        _refuse_unredeemable(code, customer.id)
        pool = await repository.pool_by_id(session, code.pool_id)
        _refuse_outside_window(pool, now, redeeming=True)
        code.status = "redeemed"
        code.redeemed_at = now
        code.order_reference = order_reference
        change = Change(
            "promo_code_redeemed",
            f"promo_codes.{code.code}",
            {"status": "issued"},
            {"status": "redeemed", "order_reference": order_reference},
        )
        await _record(session, actor, customer, change)
        return StoredResponse(200, presenters.code_body(code, pool.key))

    return await idempotency.once_per_key(uow, actor.project_id, idempotent, redeem)


def _refuse_unredeemable(code: PromoCode, customer_id: uuid.UUID) -> None:
    if code.status == "available":
        raise Conflict(f"The promo code {code.code!r} has not been issued to anyone.")
    if code.status == "void":
        raise Conflict(f"The promo code {code.code!r} is void.")
    if code.customer_id != customer_id:
        raise Conflict(f"The promo code {code.code!r} was issued to another customer.")
    if code.status == "redeemed" and code.redeemed_at is not None:
        raise Conflict(
            f"The promo code {code.code!r} was already redeemed at {code.redeemed_at.isoformat()}."
        )


@dataclass(frozen=True)
class CodesQuery:
    status: str | None
    before: tuple[datetime, uuid.UUID] | None
    limit: int


async def customer_codes(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID, query: CodesQuery
) -> list[tuple[PromoCode, str]]:
    """The customer's codes with their pool keys, most recently issued first. A merged id
    answers for its survivor, which holds the codes of every customer merged into it."""
    async with uow.read_only() as session:
        survivor = await customer_rows.survivor_id(session, project_id, customer_id)
        return await repository.codes_of_customer(
            session,
            project_id,
            survivor,
            status=query.status,
            before=query.before,
            limit=query.limit,
        )


@dataclass(frozen=True)
class PrizeGiven:
    campaign: str
    prize: str
    details: dict[str, Any] | None


async def give_prize(
    uow: UnitOfWork,
    actor: Actor,
    customer_id: uuid.UUID,
    given: PrizeGiven,
    *,
    idempotent: IdempotentRequest | None,
) -> StoredResponse:
    async def give(session: AsyncSession) -> StoredResponse:
        customer = await _lock_customer(session, actor.project_id, customer_id)
        prize = Prize(
            id=new_id(),
            project_id=actor.project_id,
            customer_id=customer.id,
            origin_customer_id=customer.id,
            campaign=given.campaign,
            prize=given.prize,
            status="issued",
            details=given.details,
            issued_at=datetime.now(UTC),
        )
        await repository.add_prize(session, prize)
        change = Change(
            "prize_issued",
            f"prizes.{prize.id}",
            None,
            {"campaign": prize.campaign, "prize": prize.prize, "status": "issued"},
        )
        await _record(session, actor, customer, change)
        return StoredResponse(201, presenters.prize_body(prize))

    return await idempotency.once_per_key(uow, actor.project_id, idempotent, give)


async def claim_prize(
    uow: UnitOfWork,
    actor: Actor,
    customer_id: uuid.UUID,
    prize_id: uuid.UUID,
    *,
    idempotent: IdempotentRequest | None,
) -> StoredResponse:
    """Mark the customer's prize claimed; 404 if it is not theirs, 409 if already claimed."""

    async def claim(session: AsyncSession) -> StoredResponse:
        customer = await _lock_customer(session, actor.project_id, customer_id)
        prize = await repository.lock_prize(session, actor.project_id, prize_id)
        if prize is None or prize.customer_id != customer.id:
            raise NotFound(f"Customer {customer_id} has no prize {prize_id}.")
        if prize.claimed_at is not None:
            raise Conflict(
                f"The prize {prize_id} was already claimed at {prize.claimed_at.isoformat()}."
            )
        prize.status = "claimed"
        prize.claimed_at = datetime.now(UTC)
        change = Change(
            "prize_claimed", f"prizes.{prize.id}", {"status": "issued"}, {"status": "claimed"}
        )
        await _record(session, actor, customer, change)
        return StoredResponse(200, presenters.prize_body(prize))

    return await idempotency.once_per_key(uow, actor.project_id, idempotent, claim)


@dataclass(frozen=True)
class PrizesQuery:
    status: str | None
    before_id: uuid.UUID | None
    limit: int


async def customer_prizes(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID, query: PrizesQuery
) -> list[Prize]:
    """Newest first; a merged id answers for its survivor."""
    async with uow.read_only() as session:
        survivor = await customer_rows.survivor_id(session, project_id, customer_id)
        return await repository.prizes_of_customer(
            session,
            project_id,
            survivor,
            status=query.status,
            before_id=query.before_id,
            limit=query.limit,
        )


async def merge_into(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> dict[uuid.UUID, dict[str, list[str]]]:
    """The promotions step of a merge: every code and prize of the sources now belongs to
    the target; each keeps origin_customer_id, the customer it was given to. Returns the
    codes and prize ids moved from each source.

    The caller holds the customers' row locks, which every use case here takes before
    touching codes or prizes, so nothing of a source changes while this step runs."""
    source_ids: Sequence[uuid.UUID] = [s.id for s in sources]
    moved: dict[uuid.UUID, dict[str, list[str]]] = {
        s.id: {"promo_codes": [], "prizes": []} for s in sources
    }
    for holder, code in await repository.codes_held_by(session, actor.project_id, source_ids):
        moved[holder]["promo_codes"].append(code)
    for holder, prize_id in await repository.prizes_held_by(session, actor.project_id, source_ids):
        moved[holder]["prizes"].append(str(prize_id))
    await repository.move_codes(session, actor.project_id, source_ids, target.id)
    await repository.move_prizes(session, actor.project_id, source_ids, target.id)
    return moved


async def erase(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """The promotions step of an erase: codes and prizes stay issued (a pool's counts hold),
    order references and the strings in prize details do not."""
    await repository.redact_for_customers(session, project_id, customer_ids)
