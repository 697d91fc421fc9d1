"""A customer as the API shows it: profile, identifiers and the ids merged into it.

Read in one statement (`repository.view_rows`), so a view is one consistent snapshot and
costs one round trip, whether it is one customer or a page of them.
"""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.customers import repository
from app.customers.models import Customer
from app.identity.service import IdentifierRef

# Merge chains are short (a survivor merged later into another); the bound guards a cycle.
MAX_MERGE_HOPS = 16


@dataclass(frozen=True)
class AuthTokenStatus:
    """That a customer auth token exists: never the token, only its public prefix."""

    fingerprint: str
    issued_at: datetime


@dataclass(frozen=True)
class CustomerView:
    id: uuid.UUID
    status: str
    merged_into: uuid.UUID | None
    version: int
    first_name: str | None
    last_name: str | None
    middle_name: str | None
    birth_date: date | None
    gender: str | None
    area: str | None
    time_zone: str | None
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    identifiers: list[IdentifierRef] = field(default_factory=list)
    merged_ids: list[uuid.UUID] = field(default_factory=list)
    auth_token: AuthTokenStatus | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> "CustomerView":
        kinds: list[str] = row.identifier_kinds or []
        values: list[str] = row.identifier_values or []
        return cls(
            id=row.id,
            status=row.status,
            merged_into=row.merged_into,
            version=row.version,
            first_name=row.first_name,
            last_name=row.last_name,
            middle_name=row.middle_name,
            birth_date=row.birth_date,
            gender=row.gender,
            area=row.area,
            time_zone=row.time_zone,
            custom_fields=row.custom_fields or {},
            created_at=row.created_at,
            updated_at=row.updated_at,
            identifiers=[IdentifierRef(k, v) for k, v in zip(kinds, values, strict=True)],
            merged_ids=list(row.merged_ids or []),
            auth_token=(
                AuthTokenStatus(row.auth_token_fingerprint, row.auth_token_issued_at)
                if row.auth_token_fingerprint is not None
                else None
            ),
        )

    @classmethod
    def from_customer(
        cls,
        customer: Customer,
        identifiers: list[IdentifierRef],
        merged_ids: list[uuid.UUID],
        auth_token: "AuthTokenStatus | None" = None,
    ) -> "CustomerView":
        """The view of a row this transaction holds and has just changed."""
        return cls(
            id=customer.id,
            status=customer.status,
            merged_into=customer.merged_into,
            version=customer.version,
            first_name=customer.first_name,
            last_name=customer.last_name,
            middle_name=customer.middle_name,
            birth_date=customer.birth_date,
            gender=customer.gender,
            area=customer.area,
            time_zone=customer.time_zone,
            custom_fields=dict(customer.custom_fields or {}),
            created_at=customer.created_at,
            updated_at=customer.updated_at,
            identifiers=list(identifiers),
            merged_ids=list(merged_ids),
            auth_token=auth_token,
        )


async def views_of(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, CustomerView]:
    rows = await repository.view_rows(session, project_id, customer_ids)
    return {row.id: CustomerView.from_row(row) for row in rows}


async def surviving_view(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> CustomerView:
    """The customer with this id, or the survivor at the end of its merge chain; 404
    outside the project."""
    wanted = customer_id
    for _ in range(MAX_MERGE_HOPS):
        view = (await views_of(session, project_id, [wanted])).get(wanted)
        # An erased customer is gone for every API reader, like one that never existed.
        if view is None or view.status == "erased":
            raise NotFound(f"No customer {customer_id}.")
        if view.merged_into is None:
            return view
        wanted = view.merged_into
    raise RuntimeError(f"merge chain of {customer_id} is longer than {MAX_MERGE_HOPS}")


async def surviving_id(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> uuid.UUID:
    """Like surviving_view, reading only status and merge pointer (for writes, which lock next)."""
    wanted = customer_id
    for _ in range(MAX_MERGE_HOPS):
        found = await repository.status_of(session, project_id, wanted)
        if found is None or found[0] == "erased":
            raise NotFound(f"No customer {customer_id}.")
        _, merged_into = found
        if merged_into is None:
            return wanted
        wanted = merged_into
    raise RuntimeError(f"merge chain of {customer_id} is longer than {MAX_MERGE_HOPS}")
