"""All SQL of promo pools, promo codes and prizes."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ARRAY, Text, Uuid, bindparam, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import project_page_query, table_of
from app.core.redaction import redacted_json, redacted_text
from app.promotions.models import Prize, PromoCode, PromoPool

_codes = table_of(PromoCode)
_prizes = table_of(Prize)


async def add_pool(session: AsyncSession, pool: PromoPool) -> PromoPool:
    session.add(pool)
    await session.flush()
    await session.refresh(pool)
    return pool


async def pool_by_key(session: AsyncSession, project_id: uuid.UUID, key: str) -> PromoPool | None:
    query = select(PromoPool).where(PromoPool.project_id == project_id, PromoPool.key == key)
    return (await session.scalars(query)).one_or_none()


async def pool_by_id(session: AsyncSession, pool_id: uuid.UUID) -> PromoPool:
    return (await session.scalars(select(PromoPool).where(PromoPool.id == pool_id))).one()


async def pools(
    session: AsyncSession, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[PromoPool]:
    query = project_page_query(PromoPool, project_id=project_id, after_id=after_id, limit=limit)
    return list(await session.scalars(query))


async def code_counts(session: AsyncSession, pool_id: uuid.UUID) -> dict[str, int]:
    query = (
        select(PromoCode.status, func.count().label("n"))
        .where(PromoCode.pool_id == pool_id)
        .group_by(PromoCode.status)
    )
    return {row.status: row.n for row in await session.execute(query)}


# unnest() of two arrays is one row per position: the whole chunk is one statement with
# two parameters, however many codes it holds.
_UPLOAD_ROWS = (
    func.unnest(bindparam("ids", type_=ARRAY(Uuid())), bindparam("codes", type_=ARRAY(Text())))
    .table_valued("id", "code")
    .render_derived()
)


async def insert_codes(
    session: AsyncSession,
    project_id: uuid.UUID,
    pool_id: uuid.UUID,
    rows: Sequence[tuple[uuid.UUID, str]],
) -> int:
    """Insert (id, code) rows as available codes; those the project already has are
    skipped. Returns how many were inserted."""
    if not rows:
        return 0
    statement = (
        insert(_codes)
        .from_select(
            ["id", "project_id", "pool_id", "code"],
            select(
                _UPLOAD_ROWS.c.id,
                literal(project_id, Uuid()),
                literal(pool_id, Uuid()),
                _UPLOAD_ROWS.c.code,
            ),
        )
        .on_conflict_do_nothing(index_elements=["project_id", "code"])
    )
    result = await session.execute(
        statement, {"ids": [row[0] for row in rows], "codes": [row[1] for row in rows]}
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def next_free_code(
    session: AsyncSession, project_id: uuid.UUID, pool_id: uuid.UUID, *, skip_locked: bool
) -> PromoCode | None:
    """The pool's oldest available code, locked. With skip_locked, codes other issuers hold
    are passed over (none waits for another); without, it waits for them to finish."""
    query = (
        select(PromoCode)
        .where(
            PromoCode.project_id == project_id,
            PromoCode.pool_id == pool_id,
            PromoCode.status == "available",
        )
        .order_by(PromoCode.id)
        .limit(1)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def lock_code(session: AsyncSession, project_id: uuid.UUID, code: str) -> PromoCode | None:
    query = (
        select(PromoCode)
        .where(PromoCode.project_id == project_id, PromoCode.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def codes_of_customer(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    status: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[tuple[PromoCode, str]]:
    """(code, its pool's key), most recently issued first."""
    query = (
        select(PromoCode, PromoPool.key)
        .join(PromoPool, PromoPool.id == PromoCode.pool_id)
        .where(PromoCode.project_id == project_id, PromoCode.customer_id == customer_id)
        .order_by(PromoCode.issued_at.desc(), PromoCode.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(PromoCode.status == status)
    if before is not None:
        query = query.where(tuple_(PromoCode.issued_at, PromoCode.id) < tuple_(*before))
    return [(row.PromoCode, row.key) for row in await session.execute(query)]


async def codes_held_by(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str]]:
    """(customer, code) of every code the customers hold."""
    query = (
        select(PromoCode.customer_id, PromoCode.code)
        .where(PromoCode.project_id == project_id, PromoCode.customer_id.in_(customer_ids))
        .order_by(PromoCode.id)
    )
    return [(row.customer_id, row.code) for row in await session.execute(query)]


async def move_codes(
    session: AsyncSession,
    project_id: uuid.UUID,
    from_customers: Sequence[uuid.UUID],
    to_customer: uuid.UUID,
) -> None:
    await session.execute(
        update(_codes)
        .where(_codes.c.project_id == project_id, _codes.c.customer_id.in_(from_customers))
        .values(
            customer_id=to_customer,
            # Set at issue already; kept as is (through merge chains too).
            origin_customer_id=func.coalesce(_codes.c.origin_customer_id, _codes.c.customer_id),
        )
    )


async def add_prize(session: AsyncSession, prize: Prize) -> None:
    session.add(prize)
    await session.flush()


async def lock_prize(
    session: AsyncSession, project_id: uuid.UUID, prize_id: uuid.UUID
) -> Prize | None:
    query = (
        select(Prize)
        .where(Prize.project_id == project_id, Prize.id == prize_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def prizes_of_customer(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    status: str | None,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[Prize]:
    """Newest first (ids are time-ordered)."""
    query = (
        select(Prize)
        .where(Prize.project_id == project_id, Prize.customer_id == customer_id)
        .order_by(Prize.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(Prize.status == status)
    if before_id is not None:
        query = query.where(Prize.id < before_id)
    return list(await session.scalars(query))


async def prizes_held_by(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(customer, prize id) of every prize the customers hold."""
    query = (
        select(Prize.customer_id, Prize.id)
        .where(Prize.project_id == project_id, Prize.customer_id.in_(customer_ids))
        .order_by(Prize.id)
    )
    return [(row.customer_id, row.id) for row in await session.execute(query)]


async def move_prizes(
    session: AsyncSession,
    project_id: uuid.UUID,
    from_customers: Sequence[uuid.UUID],
    to_customer: uuid.UUID,
) -> None:
    await session.execute(
        update(_prizes)
        .where(_prizes.c.project_id == project_id, _prizes.c.customer_id.in_(from_customers))
        .values(customer_id=to_customer)
    )


async def redact_for_customers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(
        update(PromoCode)
        .where(PromoCode.project_id == project_id, PromoCode.customer_id.in_(customer_ids))
        .values(order_reference=redacted_text(PromoCode.order_reference))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Prize)
        .where(Prize.project_id == project_id, Prize.customer_id.in_(customer_ids))
        .values(details=redacted_json(Prize.details))
        .execution_options(synchronize_session=False)
    )
