"""All SQL of the customers table.

The view query also reads `customer_identifiers` (identity's table) and
`customer_auth_tokens` (devices') in the same statement: a customer and what it holds
must come from one snapshot, in one round trip. It is the one read that crosses the
domain line; writes to those tables go through their domains' services.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Row, Select, Uuid, bindparam, func, insert, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import table_of
from app.customers.models import Customer, CustomerMerge
from app.devices.models import CustomerAuthToken
from app.identity.models import CustomerIdentifier


def _view_select() -> Select[Any]:
    identifiers_of_customer = CustomerIdentifier.customer_id == Customer.id
    kinds = (
        select(func.array_agg(aggregate_order_by(CustomerIdentifier.kind, CustomerIdentifier.id)))
        .where(identifiers_of_customer)
        .scalar_subquery()
    )
    values = (
        select(func.array_agg(aggregate_order_by(CustomerIdentifier.value, CustomerIdentifier.id)))
        .where(identifiers_of_customer)
        .scalar_subquery()
    )
    # Every customer merged into this one, however deep the chain (A into B, B into C).
    merged_ids = literal_column(
        "(WITH RECURSIVE tree(id) AS ("
        " SELECT m.id FROM customers m WHERE m.merged_into = customers.id"
        " UNION ALL"
        " SELECT m.id FROM customers m JOIN tree ON m.merged_into = tree.id)"
        " SELECT array_agg(id ORDER BY id) FROM tree)",
        type_=ARRAY(Uuid),
    )
    token_of_customer = CustomerAuthToken.customer_id == Customer.id
    token_fingerprint = select(CustomerAuthToken.prefix).where(token_of_customer).scalar_subquery()
    token_issued_at = select(CustomerAuthToken.issued_at).where(token_of_customer).scalar_subquery()
    return select(
        *Customer.__table__.columns,
        kinds.label("identifier_kinds"),
        values.label("identifier_values"),
        merged_ids.label("merged_ids"),
        token_fingerprint.label("auth_token_fingerprint"),
        token_issued_at.label("auth_token_issued_at"),
    )


_VIEWS_BY_ID = _view_select().where(
    Customer.project_id == bindparam("project_id"),
    Customer.id.in_(bindparam("ids", expanding=True)),
)


async def view_rows(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[Row[Any]]:
    if not customer_ids:
        return []
    result = await session.execute(
        _VIEWS_BY_ID, {"project_id": project_id, "ids": list(customer_ids)}
    )
    return list(result)


async def list_view_rows(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    after_id: uuid.UUID | None,
    limit: int,
    status: str,
    updated_since: datetime | None,
    created_since: datetime | None,
) -> list[Row[Any]]:
    query = (
        _view_select()
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
    return list(await session.execute(query))


_INSERT_CUSTOMER = insert(table_of(Customer))


async def insert_customer(session: AsyncSession, customer: Customer) -> None:
    """A Core insert of a fully built row: no ORM flush, no round trip back."""
    values = {column.key: getattr(customer, column.key) for column in Customer.__table__.columns}
    await session.execute(_INSERT_CUSTOMER, values)


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


async def status_of(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> tuple[str, uuid.UUID | None] | None:
    """(status, merged_into) of one customer: enough to follow a merge chain."""
    query = select(Customer.status, Customer.merged_into).where(
        Customer.project_id == project_id, Customer.id == customer_id
    )
    row = (await session.execute(query)).first()
    return (row.status, row.merged_into) if row is not None else None


async def insert_merges(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(table_of(CustomerMerge)), list(rows))


async def merges_into(
    session: AsyncSession, project_id: uuid.UUID, target_ids: Sequence[uuid.UUID]
) -> list[CustomerMerge]:
    query = (
        select(CustomerMerge)
        .where(CustomerMerge.project_id == project_id, CustomerMerge.target_id.in_(target_ids))
        .order_by(CustomerMerge.id)
    )
    return list(await session.scalars(query))
