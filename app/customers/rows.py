"""Customer rows for other domains' use cases (devices, ...): lock them, mark them changed.

Lock discipline, shared by every use case: advisory locks first, then customer rows in
id order in one statement, then the domain's own rows.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.copy import copy_records
from app.core.retry import MergedMeanwhile
from app.customers import repository
from app.customers.inputs import PROFILE_FIELDS
from app.customers.models import Customer
from app.customers.views import surviving_id


async def survivor_id(
    session: AsyncSession, project_id: uuid.UUID, customer_id: uuid.UUID
) -> uuid.UUID:
    """The id itself, or its survivor if it was merged; 404 if unknown or erased."""
    return await surviving_id(session, project_id, customer_id)


async def lock_active(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Customer]:
    """Lock live customers; one merged or erased meanwhile makes the use case start over
    (`with_retries`), or answer 409 if it does not."""
    locked = await repository.lock_customers(session, project_id, sorted(set(customer_ids)))
    if any(c.status != "active" for c in locked):
        raise MergedMeanwhile("A customer involved was merged meanwhile; retry the request.")
    return {c.id: c for c in locked}


# The column order of the records copy_new_customers takes.
NEW_CUSTOMER_COLUMNS = (
    "id",
    "project_id",
    "status",
    *PROFILE_FIELDS,
    "custom_fields",
    "version",
    "created_at",
    "updated_at",
)


async def copy_new_customers(session: AsyncSession, records: Sequence[Sequence[Any]]) -> None:
    """New customers in bulk (a bulk import), with COPY, in the caller's transaction."""
    await copy_records(session, "customers", NEW_CUSTOMER_COLUMNS, records)


def mark_changed(customer: Customer) -> None:
    """A change to anything the customer owns moves its version (If-Match, ETag)."""
    customer.version += 1
    customer.updated_at = datetime.now(UTC)
