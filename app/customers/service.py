"""Reading customers: by id, by identifier, as a list, and their two histories.

Reads run without a transaction (`uow.read_only()`): each is one statement, or a chain
of statements where each step only needs the previous one's answer.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.changelog import service as changelog
from app.changelog.models import ProfileChange
from app.core.auth import Actor, ProjectSettings
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.customers import repository
from app.customers.inputs import IdentifierReader, load_rules, raise_if_invalid, read_identifiers
from app.customers.schemas import IdentifiersIn
from app.customers.search import SearchPage, SearchParameters, read_search
from app.customers.views import CustomerView, surviving_id, surviving_view
from app.fields import service as fields_service
from app.identity import kinds
from app.identity import service as identity
from app.identity.models import IdentifierHistory


async def get_customer(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID
) -> CustomerView:
    """A merged id answers with its survivor."""
    async with uow.read_only() as session:
        return await surviving_view(session, project_id, customer_id)


@dataclass(frozen=True)
class LookupQuery:
    """One identifier as the caller spelled it: `kind` is email, phone, discount_card or
    external:<field>; `parameter` is the query parameter it came from (for pointers)."""

    kind: str
    raw_value: str
    parameter: str


async def lookup_customer(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    project: ProjectSettings,
    query: LookupQuery,
    *,
    default_phone_region: str,
) -> CustomerView:
    """The customer owning an identifier, normalised exactly as writes normalise it."""
    async with uow.read_only() as session:
        rules = await load_rules(
            session, project_id, project, default_phone_region=default_phone_region
        )
        reader = IdentifierReader(rules)
        pointer = "/" + query.parameter
        if kinds.is_external(query.kind):
            field_key = kinds.external_field(query.kind)
            wanted = reader.read_external(field_key, query.raw_value, pointer)
        else:
            wanted = reader.read(query.kind, query.raw_value, pointer)
        if reader.errors:
            raise InvalidInput(
                "The identifier is not valid.",
                errors=[
                    FieldError(location="query", pointer=e.pointer, message=e.message)
                    for e in reader.errors
                ],
            )
        if wanted is None:  # blocklisted: never identifies anyone
            raise NotFound("No customer has this identifier.")
        owners = await identity.owners_of(session, project_id, [wanted.ref])
        if wanted.ref not in owners:
            raise NotFound("No customer has this identifier.")
        return await surviving_view(session, project_id, owners[wanted.ref])


async def find_customer(
    session: AsyncSession,
    actor: Actor,
    identifiers: IdentifiersIn,
    *,
    default_phone_region: str,
    pointer_prefix: str,
) -> uuid.UUID:
    """The one customer these identifiers (or customer_id) point at, never creating one:
    for other domains' writes (an action, a subscription) inside their own transaction.
    404 if nobody matches; 409 if they point at different customers."""
    project_id = actor.project_id
    if identifiers.customer_id is not None:
        return await surviving_id(session, project_id, identifiers.customer_id)
    rules = await load_rules(
        session, project_id, actor.project, default_phone_region=default_phone_region
    )
    reader = IdentifierReader(rules)
    wanted = read_identifiers(reader, identifiers, prefix=pointer_prefix)
    raise_if_invalid(reader.errors)
    owners = await identity.owners_of(session, project_id, [w.ref for w in wanted])
    matched = {owners[w.ref] for w in wanted if w.ref in owners}
    if not matched:
        raise NotFound("No customer has these identifiers.")
    if len(matched) > 1:
        raise Conflict(
            "The identifiers point at different customers.",
            errors=[
                FieldError(pointer=w.pointer, message=f"Identifies customer {owners[w.ref]}.")
                for w in wanted
                if w.ref in owners
            ],
        )
    return await surviving_id(session, project_id, matched.pop())


async def list_customers(
    uow: UnitOfWork, project_id: uuid.UUID, parameters: SearchParameters, page: SearchPage
) -> list[CustomerView]:
    """A page of the customers matching every filter, in the page's sort order. In a
    transaction, unlike other reads: the search plans itself for its values with SET LOCAL."""
    async with uow:
        session = uow.session
        fields = (
            await fields_service.definitions_for(session, project_id)
            if parameters.needs_field_definitions
            else {}
        )
        search = read_search(parameters, fields=fields)
        rows = await repository.search_view_rows(session, project_id, search, page)
        return [CustomerView.from_row(row) for row in rows]


async def identifier_history(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[IdentifierHistory]:
    """The ID changelog, newest first, including customers merged into this one."""
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        ids = [view.id, *view.merged_ids]
        return await identity.history(session, project_id, ids, before_id=before_id, limit=limit)


async def profile_changelog(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[ProfileChange]:
    """Every change to the profile, newest first, including customers merged into this one."""
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        ids = [view.id, *view.merged_ids]
        return await changelog.list_changes(
            session, project_id, ids, before_id=before_id, limit=limit
        )


@dataclass
class MergeTreeEntry:
    """A customer in a merge tree, with the customers merged directly into it."""

    id: uuid.UUID
    merged_at: datetime | None
    touchpoint: str | None
    initiator: str | None
    merged: list["MergeTreeEntry"]


async def merge_tree(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID
) -> MergeTreeEntry:
    """The survivor at the root, each merged customer under the one it was merged into."""
    async with uow.read_only() as session:
        survivor = await surviving_view(session, project_id, customer_id)
        edges = await repository.merges_into(
            session, project_id, [survivor.id, *survivor.merged_ids]
        )
    root = MergeTreeEntry(survivor.id, None, None, None, [])
    nodes = {survivor.id: root}
    for edge in edges:  # in merge order: a target is in the tree before its sources
        node = nodes.setdefault(
            edge.source_id, MergeTreeEntry(edge.source_id, None, None, None, [])
        )
        node.merged_at, node.touchpoint, node.initiator = (
            edge.created_at,
            edge.touchpoint,
            edge.initiator,
        )
        nodes.setdefault(edge.target_id, MergeTreeEntry(edge.target_id, None, None, None, []))
        nodes[edge.target_id].merged.append(node)
    return root
