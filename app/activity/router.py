"""HTTP endpoints of action types, actions and the customer feed.

The feed's URL lives under customers (`/v1/customers/{id}/actions`), but it is the activity
domain's view of a customer, so its code is here.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from app.activity import ingest, service
from app.activity.presenters import feed_item_read
from app.activity.schemas import (
    ACTION_TYPE_KEY_PATTERN,
    ActionBatchCreate,
    ActionBatchRead,
    ActionCreate,
    ActionRead,
    ActionTypeCreate,
    ActionTypePatch,
    ActionTypeRead,
)
from app.activity.service import FeedQuery
from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import SettingsDep, UnitOfWorkDep
from app.core.idempotency import IdempotentRequest
from app.core.pagination import (
    DEFAULT_PAGE_LIMIT,
    Page,
    PageCursor,
    PageLimit,
    decode_id_cursor,
    decode_time_id_cursor,
    split_page,
)
from app.core.problems import problem_responses
from app.projects.auth import AdminDep, require_actor, require_scope

router = APIRouter(tags=["activity"], responses=problem_responses(401, 403, 422, 429))
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
WriterDep = Annotated[Actor, Depends(require_actor(Scope.CUSTOMERS_WRITE))]
TypeKeyPath = Annotated[str, Path(pattern=ACTION_TYPE_KEY_PATTERN)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description="Retries with the same key and body replay the first answer; "
        "the same key with another body is a 409.",
    ),
]


@router.post(
    "/v1/action-types",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="activity_create_type",
)
async def activity_create_type(
    body: ActionTypeCreate, uow: UnitOfWorkDep, admin: AdminDep
) -> ActionTypeRead:
    """Declare an action type and the JSON Schema its payloads must match."""
    created = await service.create_action_type(uow, admin.project_id, body)
    return ActionTypeRead.model_validate(created)


@router.get("/v1/action-types", operation_id="activity_list_types")
async def activity_list_types(
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[ActionTypeRead]:
    """List the declared action types in the order they were declared."""
    found = await service.list_action_types(
        uow, principal.project_id, after_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(found, limit, lambda t: [str(t.id)])
    return Page(items=[ActionTypeRead.model_validate(t) for t in items], next_cursor=next_cursor)


@router.get(
    "/v1/action-types/{key}", responses=problem_responses(404), operation_id="activity_get_type"
)
async def activity_get_type(
    key: TypeKeyPath, uow: UnitOfWorkDep, principal: ReaderDep
) -> ActionTypeRead:
    """Read an action type with its current payload schema and version."""
    return ActionTypeRead.model_validate(
        await service.get_action_type(uow, principal.project_id, key)
    )


@router.patch(
    "/v1/action-types/{key}",
    responses=problem_responses(404),
    operation_id="activity_update_type",
)
async def activity_update_type(
    key: TypeKeyPath, body: ActionTypePatch, uow: UnitOfWorkDep, admin: AdminDep
) -> ActionTypeRead:
    """Change the description or replace the payload schema (which moves the version)."""
    updated = await service.update_action_type(uow, admin.project_id, key, body)
    return ActionTypeRead.model_validate(updated)


@router.post(
    "/v1/actions",
    status_code=status.HTTP_201_CREATED,
    response_model=ActionRead,
    responses={
        200: {"description": "Stored before under this external_id", "model": ActionRead},
        **problem_responses(404, 409),
    },
    operation_id="activity_create",
)
async def activity_create(
    body: ActionCreate,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record an action for the customer any identifier (or the id) points at."""
    idempotent = (
        IdempotentRequest.of(idempotency_key, "activity_create", body.model_dump(mode="json"))
        if idempotency_key is not None
        else None
    )
    stored = await ingest.record_action(
        uow,
        actor,
        body,
        default_phone_region=settings.default_phone_region,
        idempotent=idempotent,
    )
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.post(
    "/v1/actions/batch",
    response_model=ActionBatchRead,
    responses=problem_responses(409),
    operation_id="activity_create_batch",
)
async def activity_create_batch(
    body: ActionBatchCreate,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record up to 1000 actions: 200 with a result per action, stored or rejected."""
    idempotent = (
        IdempotentRequest.of(idempotency_key, "activity_create_batch", body.model_dump(mode="json"))
        if idempotency_key is not None
        else None
    )
    stored = await ingest.record_batch(
        uow,
        actor,
        body.actions,
        default_phone_region=settings.default_phone_region,
        idempotent=idempotent,
    )
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.get(
    "/v1/customers/{customer_id}/actions",
    responses=problem_responses(404),
    operation_id="activity_list_for_customer",
)
async def activity_list_for_customer(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    action_type: Annotated[
        list[Annotated[str, Query(max_length=100)]] | None,
        Query(
            alias="type",
            max_length=50,
            description="Only these types (repeat the parameter); `system.update` and the "
            "like select changes of the profile.",
        ),
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Occurred at or after (RFC 3339).")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Occurred before (RFC 3339).")] = None,
    include_system: Annotated[
        bool, Query(description="Include `system.*` actions: the profile's own changes.")
    ] = True,
) -> Page[ActionRead]:
    """The customer's timeline, newest first: its actions and the changes to its profile."""
    query = FeedQuery(
        types=action_type,
        include_system=include_system,
        since=since,
        until=until,
        before=decode_time_id_cursor(cursor),
        limit=limit + 1,
    )
    rows = await service.customer_feed(uow, principal.project_id, customer_id, query)
    items, next_cursor = split_page(
        rows, limit, lambda row: [row.occurred_at.isoformat(), str(row.id)]
    )
    return Page(items=[feed_item_read(row) for row in items], next_cursor=next_cursor)
