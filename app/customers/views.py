"""A customer as the API shows it: the row, its identifiers and the ids merged into it."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.customers import repository
from app.customers.models import Customer
from app.identity import service as identity
from app.identity.models import CustomerIdentifier

# Merge chains are short (a survivor merged later into another); the bound guards a cycle.
MAX_MERGE_HOPS = 16


@dataclass(frozen=True)
class CustomerView:
    customer: Customer
    identifiers: list[CustomerIdentifier]
    merged_ids: list[uuid.UUID]


async def views_of(
    session: AsyncSession, project_id: uuid.UUID, customers: Sequence[Customer]
) -> list[CustomerView]:
    """Two queries for any number of customers (no query per customer)."""
    ids = [c.id for c in customers]
    identifiers = await identity.identifiers_by_customer(session, project_id, ids)
    merged = await repository.merged_ids_of(session, project_id, ids)
    return [CustomerView(c, identifiers[c.id], merged[c.id]) for c in customers]


async def view_of(session: AsyncSession, customer: Customer) -> CustomerView:
    [view] = await views_of(session, customer.project_id, [customer])
    return view


async def surviving_customer(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> Customer:
    """The customer with this id, or the one it was merged into; 404 outside the project."""
    customer = await repository.get_customer(session, project_id, customer_id)
    for _ in range(MAX_MERGE_HOPS):
        # An erased customer is gone for every API reader, like one that never existed.
        if customer is None or customer.status == "erased":
            raise NotFound(f"No customer {customer_id}.")
        if customer.merged_into is None:
            return customer
        customer = await repository.get_customer(session, project_id, customer.merged_into)
    raise RuntimeError(f"merge chain of {customer_id} is longer than {MAX_MERGE_HOPS}")
