"""All SQL of the customers table."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer


async def add_customer(session: AsyncSession, customer: Customer) -> Customer:
    """Every column is set by the caller, so the insert needs no round trip back."""
    session.add(customer)
    await session.flush()
    return customer


async def get_customer(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> Customer | None:
    query = select(Customer).where(Customer.project_id == project_id, Customer.id == customer_id)
    return (await session.scalars(query)).one_or_none()


async def lock_customers(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[Customer]:
    """Row locks in id order, so two transactions locking the same customers cannot deadlock."""
    query = (
        select(Customer)
        .where(Customer.project_id == project_id, Customer.id.in_(customer_ids))
        .order_by(Customer.id)
        .with_for_update()
        # Another transaction may have changed the rows while we waited for the lock.
        .execution_options(populate_existing=True)
    )
    return list(await session.scalars(query))


async def list_customers(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    after_id: uuid.UUID | None,
    limit: int,
    status: str,
    updated_since: datetime | None,
    created_since: datetime | None,
) -> list[Customer]:
    query = (
        select(Customer)
        .where(Customer.project_id == project_id, Customer.status == status)
        .order_by(Customer.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(Customer.id > after_id)
    if updated_since is not None:
        query = query.where(Customer.updated_at >= updated_since)
    if created_since is not None:
        query = query.where(Customer.created_at >= created_since)
    return list(await session.scalars(query))


async def merged_ids_of(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The tombstones pointing at each customer."""
    grouped: dict[uuid.UUID, list[uuid.UUID]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return grouped
    query = (
        select(Customer.id, Customer.merged_into)
        .where(Customer.project_id == project_id, Customer.merged_into.in_(customer_ids))
        .order_by(Customer.id)
    )
    for row in await session.execute(query):
        grouped[row.merged_into].append(row.id)
    return grouped
