"""HTTP endpoints of segmentations, membership and a customer's segments.

`/v1/customers/{id}/segments...` lives here with the rest of segments."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import SettingsDep, UnitOfWorkDep
from app.core.pagination import (
    DEFAULT_PAGE_LIMIT,
    Page,
    PageCursor,
    PageLimit,
    decode_id_cursor,
    split_page,
)
from app.core.problems import problem_responses
from app.projects.auth import require_actor, require_scope
from app.segments import service
from app.segments.schemas import (
    CustomerSegmentRead,
    MembersResult,
    MembersUpdate,
    RecalculationStarted,
    SegmentationCreate,
    SegmentationPatch,
    SegmentationRead,
    SegmentChangeRead,
    SegmentMemberRead,
    SegmentRead,
)
from app.segments.service import SegmentationView

router = APIRouter(tags=["segments"], responses=problem_responses(401, 403, 404, 422, 429))
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
SegmentsWriterDep = Annotated[Actor, Depends(require_actor(Scope.SEGMENTS_WRITE))]


def _read(view: SegmentationView) -> SegmentationRead:
    s = view.segmentation
    return SegmentationRead(
        id=s.id,
        key=s.key,
        name=s.name,
        kind=s.kind,
        recalculate_every_minutes=s.recalculate_every_minutes,
        last_recalculated_at=s.last_recalculated_at,
        segments=[
            SegmentRead(
                id=seg.id,
                key=seg.key,
                name=seg.name,
                position=seg.position,
                rule=seg.rule,
                members=view.members.get(seg.id, 0),
            )
            for seg in view.segments
        ],
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


@router.post(
    "/v1/segmentations",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="segments_create_segmentation",
)
async def segments_create_segmentation(
    body: SegmentationCreate, uow: UnitOfWorkDep, actor: SegmentsWriterDep
) -> SegmentationRead:
    """Create a segmentation: mutually exclusive segments, set by hand or by rules."""
    created = await service.create_segmentation(
        uow,
        actor.project_id,
        key=body.key,
        name=body.name,
        kind=body.kind,
        every_minutes=body.recalculate_every_minutes,
        segments=body.segments,
    )
    [view] = await service.segmentation_views(uow, actor.project_id, created.id)
    return _read(view)


@router.get("/v1/segmentations", operation_id="segments_list_segmentations")
async def segments_list_segmentations(
    uow: UnitOfWorkDep, principal: ReaderDep
) -> list[SegmentationRead]:
    """List segmentations with their segments and member counts."""
    return [_read(v) for v in await service.segmentation_views(uow, principal.project_id)]


@router.get("/v1/segmentations/{segmentation_id}", operation_id="segments_get_segmentation")
async def segments_get_segmentation(
    segmentation_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep
) -> SegmentationRead:
    """One segmentation, its segments and how many customers each holds."""
    [view] = await service.segmentation_views(uow, principal.project_id, segmentation_id)
    return _read(view)


@router.patch("/v1/segmentations/{segmentation_id}", operation_id="segments_update_segmentation")
async def segments_update_segmentation(
    segmentation_id: uuid.UUID,
    body: SegmentationPatch,
    uow: UnitOfWorkDep,
    actor: SegmentsWriterDep,
) -> SegmentationRead:
    """Rename, reschedule, or replace the segments (membership then starts over)."""
    changes = body.model_dump(include=body.model_fields_set - {"segments"})
    await service.update_segmentation(
        uow, actor.project_id, segmentation_id, changes, body.segments
    )
    [view] = await service.segmentation_views(uow, actor.project_id, segmentation_id)
    return _read(view)


@router.delete(
    "/v1/segmentations/{segmentation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="segments_delete_segmentation",
)
async def segments_delete_segmentation(
    segmentation_id: uuid.UUID, uow: UnitOfWorkDep, actor: SegmentsWriterDep
) -> Response:
    """Delete a segmentation; the history of its members stays."""
    await service.delete_segmentation(uow, actor.project_id, segmentation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/segmentations/{segmentation_id}/recalculate",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(409),
    operation_id="segments_recalculate",
)
async def segments_recalculate(
    segmentation_id: uuid.UUID, uow: UnitOfWorkDep, actor: SegmentsWriterDep
) -> RecalculationStarted:
    """Start recalculating a rule segmentation; follow the job at /v1/jobs/{job_id}."""
    job = await service.request_recalculation(uow, actor.project_id, segmentation_id)
    return RecalculationStarted(job_id=job.id)


@router.put(
    "/v1/segmentations/{segmentation_id}/members",
    responses=problem_responses(409),
    operation_id="segments_set_members",
)
async def segments_set_members(
    segmentation_id: uuid.UUID,
    body: MembersUpdate,
    uow: UnitOfWorkDep,
    actor: SegmentsWriterDep,
    settings: SettingsDep,
) -> MembersResult:
    """Put customers in (or take them out of) segments of a manual segmentation."""
    added, removed, unchanged = await service.set_members(
        uow,
        actor,
        segmentation_id,
        body.changes,
        default_phone_region=settings.default_phone_region,
    )
    return MembersResult(added=added, removed=removed, unchanged=unchanged)


@router.get("/v1/segments/{segment_id}/customers", operation_id="segments_list_members")
async def segments_list_members(
    segment_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[SegmentMemberRead]:
    """The customers in a segment now."""
    rows = await service.segment_members(
        uow, principal.project_id, segment_id, after_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(
        items=[SegmentMemberRead(customer_id=r.customer_id, since=r.since) for r in items],
        next_cursor=next_cursor,
    )


@router.get("/v1/customers/{customer_id}/segments", operation_id="segments_for_customer")
async def segments_for_customer(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep
) -> list[CustomerSegmentRead]:
    """The segments the customer is in now."""
    rows = await service.customer_segments(uow, principal.project_id, customer_id)
    return [CustomerSegmentRead(segmentation=a, segment=b, since=c) for a, b, c in rows]


@router.get(
    "/v1/customers/{customer_id}/segments/history", operation_id="segments_history_for_customer"
)
async def segments_history_for_customer(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[SegmentChangeRead]:
    """Entries and exits, newest first, with those of customers merged into this one."""
    rows = await service.customer_history(
        uow, principal.project_id, customer_id, before_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(
        items=[
            SegmentChangeRead(
                id=r.id,
                customer_id=r.customer_id,
                segmentation_id=r.segmentation_id,
                segment_id=r.segment_id,
                event=r.event,
                recalculation_id=r.recalculation_id,
                touchpoint=r.touchpoint,
                initiator=r.initiator,
                created_at=r.created_at,
            )
            for r in items
        ],
        next_cursor=next_cursor,
    )
