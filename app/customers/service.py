"""Reading customers: by id, by identifier, as a list, and their two histories."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.changelog import service as changelog
from app.changelog.models import ProfileChange
from app.core.db import UnitOfWork
from app.core.errors import FieldError, InvalidInput, NotFound
from app.customers import repository
from app.customers.inputs import IdentifierReader, load_rules
from app.customers.schemas import CustomerStatus
from app.customers.views import CustomerView, surviving_customer, view_of, views_of
from app.identity import kinds
from app.identity import service as identity
from app.identity.models import IdentifierHistory


async def get_customer(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID
) -> CustomerView:
    """A merged id answers with its survivor."""
    async with uow:
        customer = await surviving_customer(uow.session, project_id, customer_id)
        return await view_of(uow.session, customer)


@dataclass(frozen=True)
class LookupQuery:
    """One identifier, as the caller spelled it: `kind` is email, phone, discount_card or
    external:<field>; `parameter` is the query parameter it came from (for error pointers)."""

    kind: str
    raw_value: str
    parameter: str


async def lookup_customer(
    uow: UnitOfWork, project_id: uuid.UUID, query: LookupQuery, *, default_phone_region: str
) -> CustomerView:
    """The customer owning an identifier, normalised exactly as writes normalise it."""
    async with uow:
        session = uow.session
        rules = await load_rules(session, project_id, default_phone_region=default_phone_region)
        reader = IdentifierReader(rules)
        pointer = "/" + query.parameter
        if kinds.is_external(query.kind):
            wanted = reader.read_external(
                kinds.external_field(query.kind), query.raw_value, pointer
            )
        else:
            wanted = reader.read(query.kind, query.raw_value, pointer)
        if reader.errors:
            errors = [
                FieldError(location="query", pointer=e.pointer, message=e.message)
                for e in reader.errors
            ]
            raise InvalidInput("The identifier is not valid.", errors=errors)
        if wanted is None:  # blocklisted: never identifies anyone
            raise NotFound("No customer has this identifier.")
        owners = await identity.owners_of(session, project_id, [wanted.ref])
        if wanted.ref not in owners:
            raise NotFound("No customer has this identifier.")
        customer = await surviving_customer(session, project_id, owners[wanted.ref])
        return await view_of(session, customer)


async def list_customers(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    after_id: uuid.UUID | None,
    limit: int,
    status: CustomerStatus,
    updated_since: datetime | None,
    created_since: datetime | None,
) -> list[CustomerView]:
    async with uow:
        customers = await repository.list_customers(
            uow.session,
            project_id,
            after_id=after_id,
            limit=limit,
            status=status,
            updated_since=updated_since,
            created_since=created_since,
        )
        return await views_of(uow.session, project_id, customers)


async def identifier_history(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[IdentifierHistory]:
    """The ID changelog, newest first, including customers merged into this one."""
    async with uow:
        ids = await _with_merged(uow, project_id, customer_id)
        return await identity.history(
            uow.session, project_id, ids, before_id=before_id, limit=limit
        )


async def profile_changelog(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[ProfileChange]:
    """Every change to the profile, newest first, including customers merged into this one."""
    async with uow:
        ids = await _with_merged(uow, project_id, customer_id)
        return await changelog.list_changes(
            uow.session, project_id, ids, before_id=before_id, limit=limit
        )


async def _with_merged(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID
) -> list[uuid.UUID]:
    """The survivor's id and the ids merged into it: their histories are one history."""
    customer = await surviving_customer(uow.session, project_id, customer_id)
    merged = await repository.merged_ids_of(uow.session, project_id, [customer.id])
    return [customer.id, *merged[customer.id]]
