"""Segmentations: define them, set manual membership, recalculate rule ones, read.

Recalculation runs as a job (app/jobs) and does its whole work in one transaction per
segmentation, under an advisory lock on it: a crashed run leaves nothing behind and a
rerun of the same job computes the same diff, so the job is idempotent.
"""

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.activity import service as activity_service
from app.core.auth import Actor
from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.core.ids import new_id
from app.customers import service as customers_service
from app.customers.models import Customer
from app.customers.views import surviving_view
from app.fields import service as fields_service
from app.jobs import service as jobs_service
from app.jobs.models import Job
from app.loyalty import service as loyalty_service
from app.segments import repository
from app.segments.models import Segment, Segmentation, SegmentChange, SegmentMembership
from app.segments.rules import RuleContext, compile_rule
from app.segments.schemas import MemberChange, SegmentIn

RECALCULATE = "segments.recalculate"


async def _context(
    session: AsyncSession, project_id: uuid.UUID, *, excluding: uuid.UUID | None
) -> RuleContext:
    named = await repository.project_segments(session, project_id)
    segments = {
        (segmentation_key, segment_key): segment_id
        for segmentation_key, segment_key, segment_id, segmentation_id in named
        if segmentation_id != excluding  # a rule may not depend on its own segmentation
    }
    return RuleContext(
        project_id=project_id,
        fields=await fields_service.definitions_for(session, project_id),
        point_accounts=await loyalty_service.account_ids(session, project_id),
        action_types=await activity_service.action_type_keys(session, project_id),
        segments=segments,
        now=datetime.now(UTC),
    )


async def _check_segments(
    session: AsyncSession,
    project_id: uuid.UUID,
    kind: str,
    segments: list[SegmentIn],
    segmentation_id: uuid.UUID | None,
) -> None:
    errors: list[FieldError] = []
    keys = [s.key for s in segments]
    if len(set(keys)) != len(keys):
        errors.append(FieldError(pointer="/segments", message="Segment keys must differ"))
    context = await _context(session, project_id, excluding=segmentation_id)
    for index, segment in enumerate(segments):
        pointer = f"/segments/{index}/rule"
        if kind == "manual" and segment.rule is not None:
            errors.append(FieldError(pointer=pointer, message="Manual segments have no rule"))
        elif kind == "rule" and segment.rule is None:
            errors.append(FieldError(pointer=pointer, message="A rule segment needs a rule"))
        elif segment.rule is not None:
            try:
                compile_rule(segment.rule, context, pointer=pointer)
            except InvalidInput as invalid:
                errors.extend(invalid.errors)
    if errors:
        raise InvalidInput(f"{len(errors)} problem(s) in the segments.", errors=errors)


async def create_segmentation(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    key: str,
    name: str,
    kind: str,
    every_minutes: int | None,
    segments: list[SegmentIn],
) -> Segmentation:
    async with uow:
        session = uow.session
        if kind == "manual" and every_minutes is not None:
            raise InvalidInput(
                "Manual segmentations are not recalculated.",
                errors=[FieldError(pointer="/recalculate_every_minutes", message="Only for rules")],
            )
        if await repository.segmentation_by_key(session, project_id, key) is not None:
            raise Conflict(f"A segmentation {key!r} already exists.")
        await _check_segments(session, project_id, kind, segments, None)
        segmentation = Segmentation(
            project_id=project_id,
            key=key,
            name=name,
            kind=kind,
            recalculate_every_minutes=every_minutes,
        )
        await repository.add(session, segmentation)
        await _add_segments(session, segmentation, segments)
        return segmentation


async def _add_segments(
    session: AsyncSession, segmentation: Segmentation, segments: list[SegmentIn]
) -> None:
    for position, segment in enumerate(segments):
        await repository.add(
            session,
            Segment(
                project_id=segmentation.project_id,
                segmentation_id=segmentation.id,
                key=segment.key,
                name=segment.name,
                position=position,
                rule=segment.rule,
            ),
        )


async def update_segmentation(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    segmentation_id: uuid.UUID,
    changes: dict[str, Any],
    segments: list[SegmentIn] | None,
) -> Segmentation:
    """Rename, reschedule or replace the segments (their membership starts over)."""
    async with uow:
        session = uow.session
        segmentation = await _existing(session, project_id, segmentation_id, lock=True)
        if segmentation.kind == "manual" and changes.get("recalculate_every_minutes") is not None:
            raise InvalidInput(
                "Manual segmentations are not recalculated.",
                errors=[FieldError(pointer="/recalculate_every_minutes", message="Only for rules")],
            )
        for name, value in changes.items():
            setattr(segmentation, name, value)
        if segments is not None:
            await _check_segments(session, project_id, segmentation.kind, segments, segmentation.id)
            await repository.delete_segments(session, segmentation.id)
            await _add_segments(session, segmentation, segments)
        segmentation.updated_at = datetime.now(UTC)
        await session.flush()
        return segmentation


async def delete_segmentation(
    uow: UnitOfWork, project_id: uuid.UUID, segmentation_id: uuid.UUID
) -> None:
    """Membership goes with it; the history of who was in it stays."""
    async with uow:
        segmentation = await _existing(uow.session, project_id, segmentation_id, lock=True)
        await repository.delete_segmentation(uow.session, segmentation)


async def _existing(
    session: AsyncSession, project_id: uuid.UUID, segmentation_id: uuid.UUID, *, lock: bool = False
) -> Segmentation:
    segmentation = await repository.segmentation(session, project_id, segmentation_id, lock=lock)
    if segmentation is None:
        raise NotFound(f"No segmentation {segmentation_id}.")
    return segmentation


@dataclass(frozen=True)
class SegmentationView:
    segmentation: Segmentation
    segments: list[Segment]
    members: dict[uuid.UUID, int]


async def segmentation_views(
    uow: UnitOfWork, project_id: uuid.UUID, segmentation_id: uuid.UUID | None = None
) -> list[SegmentationView]:
    async with uow.read_only() as session:
        found = (
            [await _existing(session, project_id, segmentation_id)]
            if segmentation_id is not None
            else await repository.segmentations(session, project_id)
        )
        segments = await repository.segments_of(session, [s.id for s in found])
        counts = await repository.member_counts(session, [s.id for s in segments])
        return [
            SegmentationView(s, [seg for seg in segments if seg.segmentation_id == s.id], counts)
            for s in found
        ]


async def request_recalculation(
    uow: UnitOfWork, project_id: uuid.UUID, segmentation_id: uuid.UUID
) -> Job:
    async with uow:
        segmentation = await _existing(uow.session, project_id, segmentation_id)
        if segmentation.kind != "rule":
            raise Conflict("Manual segmentations are not recalculated.")
        return await jobs_service.enqueue(
            uow.session,
            project_id=project_id,
            kind=RECALCULATE,
            payload={"segmentation_id": str(segmentation_id)},
        )


@dataclass(frozen=True)
class Recalculation:
    recalculation_id: uuid.UUID
    added: int
    removed: int


async def recalculate(
    session: AsyncSession,
    project_id: uuid.UUID,
    segmentation_id: uuid.UUID,
    *,
    recalculation_id: uuid.UUID,
    initiator: str,
) -> Recalculation:
    """The membership of one segmentation made what its rules say now: one transaction,
    one statement to compute it, the diff written to the history."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(segmentation_id)}
    )
    segmentation = await _existing(session, project_id, segmentation_id, lock=True)
    segments = await repository.segments_of(session, [segmentation.id])
    context = await _context(session, project_id, excluding=segmentation.id)
    cases = [
        (compile_rule(s.rule, context, pointer=f"/segments/{s.position}/rule"), s.id)
        for s in segments
        if s.rule is not None
    ]
    added, removed = await repository.recalculate(
        session,
        project_id=project_id,
        segmentation_id=segmentation.id,
        cases=cases,
        recalculation_id=recalculation_id,
        touchpoint="segments",
        initiator=initiator,
    )
    segmentation.last_recalculated_at = context.now
    await session.flush()
    return Recalculation(recalculation_id, added, removed)


def _lock_key(segmentation_id: uuid.UUID) -> int:
    digest = hashlib.blake2b(f"segmentation\x1f{segmentation_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def set_members(
    uow: UnitOfWork,
    actor: Actor,
    segmentation_id: uuid.UUID,
    changes: list[MemberChange],
    *,
    default_phone_region: str,
) -> tuple[int, int, int]:
    """Manual membership, all or nothing: (added, removed, unchanged)."""
    async with uow:
        session = uow.session
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(segmentation_id)}
        )
        segmentation = await _existing(session, actor.project_id, segmentation_id, lock=True)
        if segmentation.kind != "manual":
            raise Conflict("Rule segmentations are set by recalculation, not by hand.")
        segments = {s.key: s for s in await repository.segments_of(session, [segmentation.id])}
        added = removed = unchanged = 0
        history: list[dict[str, Any]] = []
        for index, change in enumerate(changes):
            target = None
            if change.segment is not None:
                target = segments.get(change.segment)
                if target is None:
                    raise InvalidInput(
                        f"No segment {change.segment!r} in this segmentation.",
                        errors=[
                            FieldError(
                                pointer=f"/changes/{index}/segment", message="Unknown segment"
                            )
                        ],
                    )
            customer_id = await customers_service.find_customer(
                session,
                actor,
                change.customer,
                default_phone_region=default_phone_region,
                pointer_prefix=f"/changes/{index}/customer",
            )
            current = await repository.membership(session, segmentation.id, customer_id)
            if current is not None and target is not None and current.segment_id == target.id:
                unchanged += 1
                continue
            if current is None and target is None:
                unchanged += 1
                continue
            if current is not None:
                history.append(
                    _change(actor, segmentation, current.segment_id, customer_id, "removed")
                )
                await repository.remove_membership(session, current)
                removed += 1
            if target is not None:
                await repository.add_membership(
                    session,
                    SegmentMembership(
                        project_id=actor.project_id,
                        segmentation_id=segmentation.id,
                        segment_id=target.id,
                        customer_id=customer_id,
                        since=datetime.now(UTC),
                    ),
                )
                history.append(_change(actor, segmentation, target.id, customer_id, "added"))
                added += 1
        await repository.add_history(session, history)
        return added, removed, unchanged


def _change(
    actor: Actor,
    segmentation: Segmentation,
    segment_id: uuid.UUID,
    customer_id: uuid.UUID,
    event: str,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "project_id": actor.project_id,
        "customer_id": customer_id,
        "segmentation_id": segmentation.id,
        "segment_id": segment_id,
        "event": event,
        "recalculation_id": None,
        "touchpoint": actor.touchpoint,
        "initiator": actor.initiator,
    }


async def customer_segments(
    uow: UnitOfWork, project_id: uuid.UUID, customer_id: uuid.UUID
) -> list[tuple[str, str, Any]]:
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        return await repository.memberships_of(session, project_id, [view.id])


async def customer_history(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[SegmentChange]:
    """Entries and exits, newest first, including those of customers merged into this one."""
    async with uow.read_only() as session:
        view = await surviving_view(session, project_id, customer_id)
        return await repository.history(
            session, project_id, [view.id, *view.merged_ids], before_id=before_id, limit=limit
        )


async def segment_members(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    segment_id: uuid.UUID,
    *,
    after_id: uuid.UUID | None,
    limit: int,
) -> list[SegmentMembership]:
    async with uow.read_only() as session:
        return await repository.members(
            session, project_id, segment_id, after_id=after_id, limit=limit
        )


async def merge_into(
    session: AsyncSession, target: Customer, sources: list[Customer], *, actor: Actor
) -> dict[uuid.UUID, list[str]]:
    """The segments step of a merge: manual memberships are united (the target's own win
    a clash), rule memberships of the sources end and come back on the survivor at the
    next recalculation. Histories stay with their customers and show under the survivor."""
    rows = await repository.memberships_of_customers(session, [target.id, *(s.id for s in sources)])
    segmentation_kinds = {
        s.id: s.kind for s in await repository.segmentations(session, actor.project_id)
    }
    held = {m.segmentation_id for m in rows if m.customer_id == target.id}
    moved: dict[uuid.UUID, list[str]] = {s.id: [] for s in sources}
    for row in rows:
        source_id = row.customer_id
        if source_id == target.id:
            continue
        if (
            segmentation_kinds.get(row.segmentation_id) == "manual"
            and row.segmentation_id not in held
        ):
            row.customer_id = target.id
            held.add(row.segmentation_id)
            moved[source_id].append(str(row.segment_id))
        else:
            await repository.remove_membership(session, row)
    await session.flush()
    return moved


async def enqueue_due(uow: UnitOfWork, *, now: datetime) -> int:
    """The schedule: a recalculation job for every rule segmentation whose interval has
    passed and that has none queued or running. Safe in every process at once."""
    enqueued = 0
    async with uow:
        session = uow.session
        for segmentation in await repository.due_segmentations(session, now):
            payload = {"segmentation_id": str(segmentation.id)}
            if await jobs_service.is_pending(
                session, project_id=segmentation.project_id, kind=RECALCULATE, payload=payload
            ):
                continue
            await jobs_service.enqueue(
                session, project_id=segmentation.project_id, kind=RECALCULATE, payload=payload
            )
            enqueued += 1
    return enqueued


async def erase(
    session: AsyncSession, project_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """The segments step of an erase: an erased customer is in no segment any more (its
    history, which holds no personal value, stays)."""
    await repository.delete_memberships_of(session, project_id, customer_ids)
