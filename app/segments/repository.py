"""All SQL of segmentations, segments, memberships and their history.

Recalculation is set-based: the new membership of a whole segmentation is computed by
one INSERT ... SELECT into a temporary table, then diffed against the current one with
five statements (history of exits, exits, drop the unchanged, history of entries,
entries).
"""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    Uuid,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.core.db import customer_history_query, project_page_query, table_of
from app.customers.models import Customer
from app.segments.models import Segment, Segmentation, SegmentChange, SegmentMembership

_memberships = table_of(SegmentMembership)
_target = Table(
    "segment_target",
    MetaData(),
    Column("customer_id", Uuid, primary_key=True),
    Column("segment_id", Uuid),
)


async def add(session: AsyncSession, row: Segmentation | Segment) -> None:
    session.add(row)
    await session.flush()


async def segmentation_by_key(
    session: AsyncSession, project_id: uuid.UUID, key: str
) -> Segmentation | None:
    query = select(Segmentation).where(
        Segmentation.project_id == project_id, Segmentation.key == key
    )
    return (await session.scalars(query)).one_or_none()


async def segmentation(
    session: AsyncSession, project_id: uuid.UUID, segmentation_id: uuid.UUID, *, lock: bool = False
) -> Segmentation | None:
    query = select(Segmentation).where(
        Segmentation.project_id == project_id, Segmentation.id == segmentation_id
    )
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def segmentations(session: AsyncSession, project_id: uuid.UUID) -> list[Segmentation]:
    query = (
        select(Segmentation).where(Segmentation.project_id == project_id).order_by(Segmentation.key)
    )
    return list(await session.scalars(query))


async def segments_of(
    session: AsyncSession, segmentation_ids: Sequence[uuid.UUID]
) -> list[Segment]:
    query = (
        select(Segment)
        .where(Segment.segmentation_id.in_(segmentation_ids))
        .order_by(Segment.position)
    )
    return list(await session.scalars(query))


async def project_segments(
    session: AsyncSession, project_id: uuid.UUID
) -> list[tuple[str, str, uuid.UUID, uuid.UUID]]:
    """(segmentation key, segment key, segment id, segmentation id) of every segment."""
    query = (
        select(Segmentation.key, Segment.key, Segment.id, Segmentation.id)
        .join(Segment, Segment.segmentation_id == Segmentation.id)
        .where(Segmentation.project_id == project_id)
    )
    return [(r[0], r[1], r[2], r[3]) for r in await session.execute(query)]


async def delete_segments(session: AsyncSession, segmentation_id: uuid.UUID) -> None:
    await session.execute(
        delete(table_of(Segment)).where(table_of(Segment).c.segmentation_id == segmentation_id)
    )


async def delete_segmentation(session: AsyncSession, segmentation: Segmentation) -> None:
    await session.delete(segmentation)
    await session.flush()


async def member_counts(
    session: AsyncSession, segment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not segment_ids:
        return {}
    query = (
        select(SegmentMembership.segment_id, func.count())
        .where(SegmentMembership.segment_id.in_(segment_ids))
        .group_by(SegmentMembership.segment_id)
    )
    return {row[0]: int(row[1]) for row in await session.execute(query)}


async def recalculate(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    segmentation_id: uuid.UUID,
    cases: Sequence[tuple[ColumnElement[bool], uuid.UUID]],
    recalculation_id: uuid.UUID,
    touchpoint: str,
    initiator: str,
) -> tuple[int, int]:
    """Replace the segmentation's membership by what the rules say now; (added, removed)."""
    # A background job over every customer of a project: the per-request statement timeout
    # would stop it on a large project (the job's lease, not a timeout, watches it).
    await session.execute(text("SET LOCAL statement_timeout = 0"))
    await session.execute(
        text(
            "CREATE TEMP TABLE segment_target"
            " (customer_id uuid PRIMARY KEY, segment_id uuid NOT NULL) ON COMMIT DROP"
        )
    )
    chosen = case(
        *[(condition, literal(segment_id, Uuid)) for condition, segment_id in cases], else_=None
    )
    matched = (
        select(Customer.id.label("customer_id"), chosen.label("segment_id"))
        .where(Customer.project_id == project_id, Customer.status == "active")
        .subquery()
    )
    await session.execute(
        insert(_target).from_select(
            ["customer_id", "segment_id"],
            select(matched.c.customer_id, matched.c.segment_id).where(
                matched.c.segment_id.is_not(None)
            ),
        )
    )
    # A temp table has no statistics until analysed; the diff's plans depend on its size.
    await session.execute(text("ANALYZE segment_target"))
    parameters = {
        "project_id": project_id,
        "segmentation_id": segmentation_id,
        "recalculation_id": recalculation_id,
        "touchpoint": touchpoint,
        "initiator": initiator,
    }
    removed = await session.execute(_HISTORY_OF_EXITS, parameters)
    await session.execute(_EXITS, parameters)
    await session.execute(_UNCHANGED, parameters)
    added = await session.execute(_HISTORY_OF_ENTRIES, parameters)
    await session.execute(_ENTRIES, parameters)
    await session.execute(text("DROP TABLE segment_target"))
    return _rows(added), _rows(removed)


def _rows(result: Any) -> int:
    return int(result.rowcount or 0)


_CHANGED = (
    "FROM segment_memberships m LEFT JOIN segment_target t ON t.customer_id = m.customer_id "
    "WHERE m.segmentation_id = :segmentation_id AND t.segment_id IS DISTINCT FROM m.segment_id"
)
_HISTORY_OF_EXITS = text(
    "INSERT INTO segment_history (id, project_id, customer_id, segmentation_id, segment_id, event,"
    " recalculation_id, touchpoint, initiator) SELECT cdp_uuid7(), :project_id, m.customer_id,"
    " m.segmentation_id, m.segment_id, 'removed', :recalculation_id, :touchpoint, :initiator "
    + _CHANGED
)
# Static text assembled from constants above: no user input reaches it.
_EXITS = text("DELETE FROM segment_memberships WHERE id IN (SELECT m.id " + _CHANGED + ")")  # noqa: S608
# After the exits, every membership left is unchanged: drop those from the target, and
# what remains are the entries. (An anti-join against the table being inserted into
# would scan its growing heap once per row: quadratic on a first recalculation.)
_UNCHANGED = text(
    "DELETE FROM segment_target t USING segment_memberships m"
    " WHERE m.segmentation_id = :segmentation_id AND m.customer_id = t.customer_id"
)
_HISTORY_OF_ENTRIES = text(
    "INSERT INTO segment_history (id, project_id, customer_id, segmentation_id, segment_id, event,"
    " recalculation_id, touchpoint, initiator) SELECT cdp_uuid7(), :project_id, t.customer_id,"
    " :segmentation_id, t.segment_id, 'added', :recalculation_id, :touchpoint, :initiator"
    " FROM segment_target t"
)
_ENTRIES = text(
    "INSERT INTO segment_memberships (id, project_id, segmentation_id, segment_id, customer_id,"
    " since) SELECT cdp_uuid7(), :project_id, :segmentation_id, t.segment_id, t.customer_id, now()"
    " FROM segment_target t"
)


async def membership(
    session: AsyncSession, segmentation_id: uuid.UUID, customer_id: uuid.UUID
) -> SegmentMembership | None:
    query = select(SegmentMembership).where(
        SegmentMembership.segmentation_id == segmentation_id,
        SegmentMembership.customer_id == customer_id,
    )
    return (await session.scalars(query)).one_or_none()


async def add_membership(session: AsyncSession, row: SegmentMembership) -> None:
    session.add(row)
    await session.flush()


async def remove_membership(session: AsyncSession, row: SegmentMembership) -> None:
    await session.delete(row)
    await session.flush()


async def add_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(table_of(SegmentChange)), list(rows))


async def memberships_of(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[tuple[str, str, Any]]:
    """(segmentation key, segment key, since) of the customers' current memberships."""
    query = (
        select(Segmentation.key, Segment.key, SegmentMembership.since)
        .join(Segment, Segment.id == SegmentMembership.segment_id)
        .join(Segmentation, Segmentation.id == SegmentMembership.segmentation_id)
        .where(
            SegmentMembership.project_id == project_id,
            SegmentMembership.customer_id.in_(customer_ids),
        )
        .order_by(Segmentation.key)
    )
    return [(r[0], r[1], r[2]) for r in await session.execute(query)]


async def history(
    session: AsyncSession,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[SegmentChange]:
    query = customer_history_query(
        SegmentChange,
        project_id=project_id,
        customer_ids=customer_ids,
        before_id=before_id,
        limit=limit,
    )
    return list(await session.scalars(query))


async def members(
    session: AsyncSession,
    project_id: uuid.UUID,
    segment_id: uuid.UUID,
    *,
    after_id: uuid.UUID | None,
    limit: int,
) -> list[SegmentMembership]:
    query = project_page_query(
        SegmentMembership, project_id=project_id, after_id=after_id, limit=limit
    ).where(SegmentMembership.segment_id == segment_id)
    return list(await session.scalars(query))


async def memberships_of_customers(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> list[SegmentMembership]:
    query = select(SegmentMembership).where(SegmentMembership.customer_id.in_(customer_ids))
    return list(await session.scalars(query))


async def due_segmentations(session: AsyncSession, now: Any) -> list[Segmentation]:
    """Scheduled rule segmentations whose interval has passed, locked (skipping those
    another process is looking at), so two schedulers never enqueue the same one."""
    interval = func.make_interval(0, 0, 0, 0, 0, Segmentation.recalculate_every_minutes)
    query = (
        select(Segmentation)
        .where(
            Segmentation.kind == "rule",
            Segmentation.recalculate_every_minutes.is_not(None),
            (Segmentation.last_recalculated_at.is_(None))
            | (Segmentation.last_recalculated_at + interval <= now),
        )
        .with_for_update(skip_locked=True)
        .limit(100)
    )
    return list(await session.scalars(query))


async def delete_memberships_of(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(
        delete(SegmentMembership).where(
            SegmentMembership.project_id == project_id,
            SegmentMembership.customer_id.in_(customer_ids),
        )
    )
