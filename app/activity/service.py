"""Action types, the customer feed, and the activity step of a merge.

Recording actions is in `ingest.py`; partition maintenance in `partitions.py`.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity import repository
from app.activity.models import ActionType
from app.activity.payloads import schema_errors
from app.activity.repository import FeedFilter
from app.activity.schemas import SYSTEM_PREFIX, ActionTypeCreate, ActionTypePatch
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.ids import new_id
from app.customers.inputs import raise_if_invalid
from app.customers.models import Customer
from app.customers.views import surviving_view


async def create_action_type(
    uow: UnitOfWork, project_id: uuid.UUID, body: ActionTypeCreate
) -> ActionType:
    """Declare a type; its schema is checked now, so ingest never meets a broken one."""
    raise_if_invalid(schema_errors(body.payload_schema, "/payload_schema"))
    async with uow:
        created = await repository.insert_action_type(
            uow.session,
            {
                "id": new_id(),
                "project_id": project_id,
                "key": body.key,
                "description": body.description,
                "payload_schema": body.payload_schema,
            },
        )
        if created is None:
            raise Conflict(f"An action type {body.key!r} already exists.")
        return created


async def update_action_type(
    uow: UnitOfWork, project_id: uuid.UUID, key: str, patch: ActionTypePatch
) -> ActionType:
    """A new schema applies to actions recorded from now on; stored ones stay as they are."""
    sent = patch.model_fields_set
    if "payload_schema" in sent:
        if patch.payload_schema is None:
            raise InvalidInput(
                "An action type always has a payload schema.",
                errors=[FieldError("/payload_schema", "Send {} to accept any object, not null.")],
            )
        raise_if_invalid(schema_errors(patch.payload_schema, "/payload_schema"))
    async with uow:
        found = await repository.get_action_type(uow.session, project_id, key, for_update=True)
        if found is None:
            raise NotFound(f"No action type {key!r}.")
        changed = False
        if "description" in sent and patch.description != found.description:
            found.description = patch.description
            changed = True
        if "payload_schema" in sent and patch.payload_schema != found.payload_schema:
            found.payload_schema = patch.payload_schema
            found.version += 1
            changed = True
        if changed:
            found.updated_at = datetime.now(UTC)
            await uow.session.flush()
        return found


async def get_action_type(uow: UnitOfWork, project_id: uuid.UUID, key: str) -> ActionType:
    async with uow.read_only() as session:
        found = await repository.get_action_type(session, project_id, key)
    if found is None:
        raise NotFound(f"No action type {key!r}.")
    return found


async def list_action_types(
    uow: UnitOfWork, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[ActionType]:
    async with uow.read_only() as session:
        return await repository.list_action_types(
            session, project_id, after_id=after_id, limit=limit
        )


@dataclass(frozen=True)
class FeedQuery:
    """A page of a customer's feed: `types` None means all; `before` is the cursor's key."""

    types: Sequence[str] | None
    include_system: bool
    since: datetime | None
    until: datetime | None
    before: tuple[datetime, uuid.UUID] | None
    limit: int


async def customer_feed(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID, query: FeedQuery
) -> list[Row[Any]]:
    """The customer's timeline, newest first: its actions (merged customers' included, since
    a merge re-points them) and, as `system.*` actions, every change to its profile."""
    async with uow.read_only() as session:
        survivor = await surviving_view(session, project_id, customer_id)
        action_types, system_operations = _split_types(query.types)
        wanted = FeedFilter(
            survivor_id=survivor.id,
            history_ids=[survivor.id, *survivor.merged_ids],
            action_types=action_types,
            system_operations=system_operations,
            include_actions=action_types is None or bool(action_types),
            include_system=query.include_system
            and (system_operations is None or bool(system_operations)),
            since=query.since,
            until=query.until,
            before=query.before,
            limit=query.limit,
        )
        return await repository.feed(session, project_id, wanted)


def _split_types(types: Sequence[str] | None) -> tuple[list[str] | None, list[str] | None]:
    """(action types, changelog operations) a `?type=` filter names; None: no filter."""
    if not types:
        return None, None
    system = [t.removeprefix(SYSTEM_PREFIX) for t in types if t.startswith(SYSTEM_PREFIX)]
    return [t for t in types if not t.startswith(SYSTEM_PREFIX)], system


async def merge_into(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> dict[uuid.UUID, int]:
    """The activity step of a merge: every action of the sources now belongs to the target
    (each keeps origin_customer_id). Returns how many moved per source.

    The caller holds the customers' row locks, and ingest takes them too before inserting,
    so no action of a source can be committed after this step has moved the others.
    """
    source_ids = [s.id for s in sources]
    counts = await repository.count_by_customer(session, actor.project_id, source_ids)
    await repository.repoint(session, actor.project_id, source_ids, target.id)
    return {source_id: counts.get(source_id, 0) for source_id in source_ids}


async def action_type_keys(session: AsyncSession, project_id: uuid.UUID) -> frozenset[str]:
    """The declared action types, in the caller's transaction (segment rules name them)."""
    keys: set[str] = set()
    after: uuid.UUID | None = None
    while True:
        page = await repository.list_action_types(session, project_id, after_id=after, limit=1000)
        keys.update(t.key for t in page)
        if len(page) < 1000:
            return frozenset(keys)
        after = page[-1].id


async def erase(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """The activity step of an erase: actions stay (counts, amounts, dates: what segments
    and reports add up), every string in their payloads becomes the marker."""
    await repository.redact_payloads(session, project_id, customer_ids)
