"""All SQL of action types, actions, their external ids, the feed and the partitions."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Row,
    Select,
    String,
    Uuid,
    false,
    func,
    insert,
    literal,
    null,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity.models import Action, ActionExternalId, ActionType
from app.changelog.models import ProfileChange
from app.core.db import project_page_query, table_of
from app.core.redaction import redacted_json

_ACTIONS = table_of(Action)
_EXTERNAL_IDS = table_of(ActionExternalId)
_CHANGES = table_of(ProfileChange)
# Core inserts: the ORM's unit-of-work machinery costs more than the insert on this hot path.
_INSERT_ACTIONS = insert(_ACTIONS)

PARTITION_SCHEMA = "activity_partitions"
DEFAULT_PARTITION = f"{PARTITION_SCHEMA}.actions_default"


# --- action types ---------------------------------------------------------------------


async def insert_action_type(session: AsyncSession, values: dict[str, Any]) -> ActionType | None:
    """The new type, or None when the project already has one with this key."""
    statement = (
        pg_insert(ActionType)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["project_id", "key"])
        .returning(ActionType)
    )
    return (await session.scalars(statement)).one_or_none()


async def get_action_type(
    session: AsyncSession, project_id: uuid.UUID, key: str, *, for_update: bool = False
) -> ActionType | None:
    query = select(ActionType).where(ActionType.project_id == project_id, ActionType.key == key)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).one_or_none()


async def list_action_types(
    session: AsyncSession, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[ActionType]:
    query = project_page_query(ActionType, project_id=project_id, after_id=after_id, limit=limit)
    return list(await session.scalars(query))


async def type_versions(
    session: AsyncSession, project_id: uuid.UUID, keys: Collection[str]
) -> dict[str, int]:
    """Only the versions: enough to find the cached validator without reading the schema."""
    query = select(ActionType.key, ActionType.version).where(
        ActionType.project_id == project_id, ActionType.key.in_(list(keys))
    )
    return {row.key: row.version for row in await session.execute(query)}


async def type_schemas(
    session: AsyncSession, project_id: uuid.UUID, keys: Collection[str]
) -> list[tuple[str, int, Any]]:
    """(key, version, payload_schema) of each type."""
    query = select(ActionType.key, ActionType.version, ActionType.payload_schema).where(
        ActionType.project_id == project_id, ActionType.key.in_(list(keys))
    )
    return [(row.key, row.version, row.payload_schema) for row in await session.execute(query)]


# --- actions ---------------------------------------------------------------------------


def action_values(action: Action) -> dict[str, Any]:
    return {column.key: getattr(action, column.key) for column in _ACTIONS.columns}


async def insert_actions(session: AsyncSession, actions: Sequence[Action]) -> None:
    if actions:
        await session.execute(_INSERT_ACTIONS, [action_values(a) for a in actions])


async def claim_external_ids(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """The external ids this transaction now owns; the others were stored before.

    A concurrent transaction inserting the same id makes this one wait for its outcome.
    Callers pass rows sorted by external id, so two batches cannot wait on each other.
    """
    if not rows:
        return set()
    statement = (
        pg_insert(_EXTERNAL_IDS)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["project_id", "external_id"])
        .returning(_EXTERNAL_IDS.c.external_id)
    )
    return set((await session.scalars(statement)).all())


async def actions_by_external_ids(
    session: AsyncSession, project_id: uuid.UUID, external_ids: Collection[str]
) -> dict[str, Action]:
    if not external_ids:
        return {}
    query = (
        select(ActionExternalId.external_id, Action)
        .join(
            Action,
            (Action.occurred_at == ActionExternalId.occurred_at)
            & (Action.id == ActionExternalId.action_id),
        )
        .where(
            ActionExternalId.project_id == project_id,
            ActionExternalId.external_id.in_(list(external_ids)),
        )
    )
    return {row[0]: row[1] for row in await session.execute(query)}


async def count_by_customer(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    query = (
        select(_ACTIONS.c.customer_id, func.count())
        .where(_ACTIONS.c.project_id == project_id, _ACTIONS.c.customer_id.in_(customer_ids))
        .group_by(_ACTIONS.c.customer_id)
    )
    return {row[0]: int(row[1]) for row in await session.execute(query)}


async def repoint(
    session: AsyncSession,
    project_id: uuid.UUID,
    from_customers: Sequence[uuid.UUID],
    to_customer: uuid.UUID,
) -> None:
    """origin_customer_id stays: it names the customer each action was recorded for."""
    await session.execute(
        update(_ACTIONS)
        .where(_ACTIONS.c.project_id == project_id, _ACTIONS.c.customer_id.in_(from_customers))
        .values(customer_id=to_customer)
    )


# --- the feed --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedFilter:
    """What a feed page asks for. `types` None: every type; `before` is the keyset cursor."""

    survivor_id: uuid.UUID
    # The survivor and every customer merged into it: their changelog rows are its history.
    history_ids: Sequence[uuid.UUID]
    action_types: Sequence[str] | None
    system_operations: Sequence[str] | None
    include_actions: bool
    include_system: bool
    since: datetime | None
    until: datetime | None
    before: tuple[datetime, uuid.UUID] | None
    limit: int


async def feed(session: AsyncSession, project_id: uuid.UUID, wanted: FeedFilter) -> list[Row[Any]]:
    """One statement: the customer's actions and, read from the profile changelog as
    `system.<operation>` actions, its changes; newest first by (occurred_at, id)."""
    branches: list[Select[Any]] = []
    if wanted.include_actions:
        branches.append(_actions_branch(project_id, wanted))
    if wanted.include_system:
        branches.append(_system_branch(project_id, wanted))
    if not branches:
        return []
    # Each branch is ordered and limited on its own (its index does the work), then merged.
    merged = union_all(*(select(branch.subquery()) for branch in branches)).subquery()
    query = (
        select(merged).order_by(merged.c.occurred_at.desc(), merged.c.id.desc()).limit(wanted.limit)
    )
    return list(await session.execute(query))


def _actions_branch(project_id: uuid.UUID, wanted: FeedFilter) -> Select[Any]:
    actions = _ACTIONS
    query = select(
        actions.c.id,
        actions.c.customer_id,
        actions.c.origin_customer_id,
        actions.c.type,
        actions.c.occurred_at,
        actions.c.received_at,
        actions.c.payload,
        actions.c.touchpoint,
        actions.c.initiator,
        actions.c.external_id,
        false().label("system"),
    ).where(actions.c.project_id == project_id, actions.c.customer_id == wanted.survivor_id)
    if wanted.action_types is not None:
        query = query.where(actions.c.type.in_(wanted.action_types))
    return _window(query, actions.c.occurred_at, actions.c.id, wanted)


def _system_branch(project_id: uuid.UUID, wanted: FeedFilter) -> Select[Any]:
    changes = _CHANGES
    query = select(
        changes.c.id,
        literal(wanted.survivor_id, Uuid).label("customer_id"),
        changes.c.customer_id.label("origin_customer_id"),
        (literal("system.", String) + changes.c.operation).label("type"),
        changes.c.created_at.label("occurred_at"),
        changes.c.created_at.label("received_at"),
        func.jsonb_build_object(
            "field",
            changes.c.field,
            "old_value",
            changes.c.old_value,
            "new_value",
            changes.c.new_value,
            type_=JSONB,
        ).label("payload"),
        changes.c.touchpoint,
        changes.c.initiator,
        null().label("external_id"),
        true().label("system"),
    ).where(changes.c.project_id == project_id, changes.c.customer_id.in_(wanted.history_ids))
    if wanted.system_operations is not None:
        query = query.where(changes.c.operation.in_(wanted.system_operations))
    return _window(query, changes.c.created_at, changes.c.id, wanted)


def _window(query: Select[Any], at: Any, row_id: Any, wanted: FeedFilter) -> Select[Any]:
    if wanted.since is not None:
        query = query.where(at >= wanted.since)
    if wanted.until is not None:
        query = query.where(at < wanted.until)
    if wanted.before is not None:
        before_at, before_id = wanted.before
        # The plain bound lets the planner skip newer partitions; the row compare is the key.
        query = query.where(at <= before_at, tuple_(at, row_id) < tuple_(before_at, before_id))
    return query.order_by(at.desc(), row_id.desc()).limit(wanted.limit)


# --- partitions ------------------------------------------------------------------------


async def partition_names(session: AsyncSession) -> list[str]:
    """The partitions of `actions`, by table name (the DEFAULT one included)."""
    rows = await session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'public.actions'::regclass"
        )
    )
    return [str(row[0]) for row in rows]


async def lock_for_partitioning(session: AsyncSession) -> None:
    """Serialises maintenance runs and holds writes to the DEFAULT partition still while its
    rows move: inserts routed to the monthly partitions go on meanwhile."""
    await session.execute(text("LOCK TABLE public.actions IN SHARE UPDATE EXCLUSIVE MODE"))
    await session.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN EXCLUSIVE MODE"))


async def create_partition(session: AsyncSession, name: str, start: datetime, end: datetime) -> int:
    """Create the partition for [start, end) and move the rows the DEFAULT partition holds
    for that range into it (PostgreSQL refuses the partition while they are there).

    `name` and the bounds are made from integers (a year and a month), never from input;
    DDL takes no bind parameters, so they are written into the statements. Returns the
    number of rows moved.
    """
    table = f"{PARTITION_SCHEMA}.{name}"
    await session.execute(text(f"CREATE TABLE {table} (LIKE public.actions INCLUDING DEFAULTS)"))
    moved = await session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608 (see docstring)
            "WHERE occurred_at >= :start AND occurred_at < :end RETURNING *) "
            f"INSERT INTO {table} SELECT * FROM moved"
        ),
        {"start": start, "end": end},
    )
    await session.execute(
        text(
            f"ALTER TABLE public.actions ATTACH PARTITION {table} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )
    return cast(CursorResult[Any], moved).rowcount


async def redact_payloads(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(
        update(Action)
        .where(Action.project_id == project_id, Action.customer_id.in_(customer_ids))
        .values(payload=redacted_json(Action.payload))
        .execution_options(synchronize_session=False)
    )
