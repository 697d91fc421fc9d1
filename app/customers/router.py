"""HTTP endpoints of customers: create, identify, look up, read, edit, list, histories."""

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import SettingsDep, UnitOfWorkDep
from app.core.errors import FieldError, InvalidInput, PreconditionFailed
from app.core.idempotency import IdempotentRequest
from app.core.pagination import (
    DEFAULT_PAGE_LIMIT,
    Page,
    PageCursor,
    PageLimit,
    decode_id_cursor,
    split_page,
)
from app.core.problems import problem_responses
from app.customers import identify, merge, service, update
from app.customers.merge import MergeCommand
from app.customers.presenters import customer_read, identify_response
from app.customers.privacy_router import count_personal_read
from app.customers.schemas import (
    ChangeRead,
    CustomerCreate,
    CustomerIdentify,
    CustomerMergeRequest,
    CustomerPatch,
    CustomerRead,
    CustomerStatus,
    Gender,
    IdentifierHistoryRead,
    IdentifyResponse,
    MergeRead,
    MergeTreeNode,
)
from app.customers.search import (
    MAX_REPEATED_FILTERS,
    CustomerSort,
    SearchParameters,
    cursor_key,
    search_page,
)
from app.customers.service import LookupQuery, MergeTreeEntry
from app.customers.views import CustomerView
from app.identity import kinds
from app.projects.auth import TouchpointHeader, actor_for, require_actor, require_scope

router = APIRouter(
    prefix="/v1/customers",
    tags=["customers"],
    responses=problem_responses(401, 403, 422, 429),
)
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
WriterDep = Annotated[Actor, Depends(require_actor(Scope.CUSTOMERS_WRITE))]
LOOKUP_PARAMETERS = {
    "email": kinds.EMAIL,
    "phone": kinds.PHONE,
    "discount_card": kinds.DISCOUNT_CARD,
    "app_installation": kinds.APP_INSTALLATION,
    "push_token": kinds.PUSH_TOKEN,
}


def _etag(view: CustomerView) -> str:
    return f'"{view.version}"'


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="customers_create",
)
async def customers_create(
    body: CustomerCreate,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    settings: SettingsDep,
    response: Response,
) -> IdentifyResponse:
    """Create a customer; 409 names any identifier that already belongs to someone."""
    outcome = await identify.create_customer(
        uow, actor, body, default_phone_region=settings.default_phone_region
    )
    response.headers["Location"] = f"/v1/customers/{outcome.view.id}"
    response.headers["ETag"] = _etag(outcome.view)
    return identify_response(outcome)


DryRun = Annotated[
    bool,
    Query(description="Do everything, return the result, write nothing (a preview)."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description="Retries with the same key and body replay the first answer; "
        "the same key with another body is a 409.",
    ),
]
MergerDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_MERGE))]


@router.post(
    "/identify",
    responses={
        201: {"description": "Created", "model": IdentifyResponse},
        **problem_responses(404, 409),
    },
    operation_id="customers_identify",
)
async def customers_identify(
    body: CustomerIdentify,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    settings: SettingsDep,
    response: Response,
    dry_run: DryRun = False,
) -> IdentifyResponse:
    """Find the customer by any identifier and update it, or create it when none matches (201)."""
    outcome = await identify.identify_customer(
        uow, actor, body, default_phone_region=settings.default_phone_region, dry_run=dry_run
    )
    if outcome.result == "created":
        response.status_code = status.HTTP_201_CREATED
    response.headers["ETag"] = _etag(outcome.view)
    return identify_response(outcome)


@router.get("/lookup", responses=problem_responses(404), operation_id="customers_lookup")
async def customers_lookup(
    request: Request,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    settings: SettingsDep,
    response: Response,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    discount_card: Annotated[str | None, Query(max_length=64)] = None,
    app_installation: Annotated[str | None, Query(max_length=128)] = None,
    push_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> CustomerRead:
    """Find the customer owning one identifier (any kind, or external.<field>)."""
    query = _lookup_query(request)
    view = await service.lookup_customer(
        uow,
        principal.project_id,
        principal.project,
        query,
        default_phone_region=settings.default_phone_region,
    )
    count_personal_read(request, principal.key_id, "lookup")
    response.headers["ETag"] = _etag(view)
    return customer_read(view)


def _lookup_query(request: Request) -> LookupQuery:
    given: list[LookupQuery] = []
    for name, value in request.query_params.multi_items():
        if name in LOOKUP_PARAMETERS:
            given.append(LookupQuery(LOOKUP_PARAMETERS[name], value, name))
        elif name.startswith("external.") and len(name) > len("external."):
            given.append(
                LookupQuery(kinds.external_kind(name.removeprefix("external.")), value, name)
            )
    if len(given) != 1:
        raise InvalidInput(
            "Give exactly one identifier: email, phone, discount_card or external.<field>.",
            errors=[
                FieldError(location="query", pointer="", message=f"{len(given)} identifiers given")
            ],
        )
    return given[0]


@router.post(
    "/merge",
    response_model=MergeRead,
    responses=problem_responses(404, 409),
    operation_id="customers_merge",
)
async def customers_merge(
    body: CustomerMergeRequest,
    uow: UnitOfWorkDep,
    principal: MergerDep,
    dry_run: DryRun = False,
    idempotency_key: IdempotencyKey = None,
    x_touchpoint: TouchpointHeader = None,
) -> Response:
    """Merge customers into a target in one transaction; nothing of theirs is lost."""
    actor = actor_for(principal, body.touchpoint or x_touchpoint)
    command = MergeCommand(body.target_id, body.source_ids, dry_run)
    idempotent = (
        IdempotentRequest.of(idempotency_key, "customers_merge", body.model_dump(mode="json"))
        if idempotency_key is not None
        else None
    )
    stored = await merge.merge_customers(uow, actor, command, idempotent=idempotent)
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.get(
    "/{customer_id}/merges",
    responses=problem_responses(404),
    operation_id="customers_list_merges",
)
async def customers_list_merges(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep
) -> MergeTreeNode:
    """The merge tree of a survivor: every customer merged into it, and when and by whom."""
    return _tree_node(await service.merge_tree(uow, principal.project_id, customer_id))


def _tree_node(entry: MergeTreeEntry) -> MergeTreeNode:
    return MergeTreeNode(
        id=entry.id,
        merged_at=entry.merged_at,
        touchpoint=entry.touchpoint,
        initiator=entry.initiator,
        merged=[_tree_node(child) for child in entry.merged],
    )


@router.get("/{customer_id}", responses=problem_responses(404), operation_id="customers_get")
async def customers_get(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    request: Request,
    response: Response,
) -> CustomerRead:
    """Read a customer; the `ETag` is its version, for `If-Match` on PATCH."""
    view = await service.get_customer(uow, principal.project_id, customer_id)
    count_personal_read(request, principal.key_id, "get")
    response.headers["ETag"] = _etag(view)
    return customer_read(view)


@router.patch(
    "/{customer_id}",
    responses=problem_responses(404, 409, 412),
    operation_id="customers_update",
)
async def customers_update(
    customer_id: uuid.UUID,
    body: CustomerPatch,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    settings: SettingsDep,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            max_length=64, description='The `ETag` of the version the change is based on: `"3"`.'
        ),
    ] = None,
) -> CustomerRead:
    """Change profile fields and identifiers with a JSON merge patch; null removes a value."""
    view = await update.update_customer(
        uow,
        actor,
        customer_id,
        body,
        if_match=_version_from_if_match(if_match),
        default_phone_region=settings.default_phone_region,
    )
    response.headers["ETag"] = _etag(view)
    return customer_read(view)


def _version_from_if_match(header: str | None) -> int | None:
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed(f"If-Match {header!r} is not a version this API issued.")
    return int(tag)


@router.get("", operation_id="customers_list")
async def customers_list(
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    status_filter: Annotated[CustomerStatus, Query(alias="status")] = "active",
    updated_since: Annotated[datetime | None, Query(description="RFC 3339, with offset.")] = None,
    created_since: Annotated[datetime | None, Query(description="RFC 3339, with offset.")] = None,
    email_domain: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=253,
            description="Customers with an email at this domain (`example.com`; exact domain, "
            "any case).",
        ),
    ] = None,
    identifier_kind: Annotated[
        str | None,
        Query(
            max_length=80,
            description="With `identifier_prefix`: `email`, `phone`, `discount_card`, "
            "`app_installation`, `push_token` or `external:<key>`.",
        ),
    ] = None,
    identifier_prefix: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=2048,
            description="With `identifier_kind`: the start of the normalised value "
            "(a phone prefix as E.164 digits: `+4930`).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="The start of the first, last or middle name, any case.",
        ),
    ] = None,
    birth_date_from: Annotated[date | None, Query(description="Inclusive.")] = None,
    birth_date_to: Annotated[date | None, Query(description="Inclusive.")] = None,
    gender: Annotated[Gender | None, Query()] = None,
    area: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Exact, any case.")
    ] = None,
    custom: Annotated[
        list[Annotated[str, Query(max_length=1100)]] | None,
        Query(
            description="Repeatable `key:value`, e.g. `tier:gold`; the value is read by the "
            f"field's type. At most {MAX_REPEATED_FILTERS}.",
        ),
    ] = None,
    segment_id: Annotated[
        uuid.UUID | None, Query(description="Customers currently in this segment.")
    ] = None,
    subscription: Annotated[
        list[Annotated[str, Query(max_length=200)]] | None,
        Query(
            description="Repeatable `channel:status` or `channel.topic:status`, e.g. "
            f"`email:subscribed`. At most {MAX_REPEATED_FILTERS}.",
        ),
    ] = None,
    sort: Annotated[
        CustomerSort,
        Query(description="`id` is creation order; ties are broken by id. `-` reverses."),
    ] = "id",
) -> Page[CustomerRead]:
    """Find customers: every filter given must match. Cursor-paginated in the sort order."""
    parameters = SearchParameters(
        status=status_filter,
        updated_since=updated_since,
        created_since=created_since,
        email_domain=email_domain,
        identifier_kind=identifier_kind,
        identifier_prefix=identifier_prefix,
        name=name,
        birth_date_from=birth_date_from,
        birth_date_to=birth_date_to,
        gender=gender,
        area=area,
        custom=tuple(custom or ()),
        segment_id=segment_id,
        subscription=tuple(subscription or ()),
    )
    page = search_page(cursor, sort, limit + 1)
    views = await service.list_customers(uow, principal.project_id, parameters, page)
    items, next_cursor = split_page(views, limit, lambda v: cursor_key(v, sort))
    return Page(items=[customer_read(v) for v in items], next_cursor=next_cursor)


@router.get(
    "/{customer_id}/identifiers/history",
    responses=problem_responses(404),
    operation_id="customers_identifier_history",
)
async def customers_identifier_history(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[IdentifierHistoryRead]:
    """The ID changelog: every identifier the customer gained or lost, newest first."""
    rows = await service.identifier_history(
        uow, principal.project_id, customer_id, before_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(
        items=[IdentifierHistoryRead.model_validate(r) for r in items], next_cursor=next_cursor
    )


@router.get(
    "/{customer_id}/changelog",
    responses=problem_responses(404),
    operation_id="customers_changelog",
)
async def customers_changelog(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[ChangeRead]:
    """The profile changelog: one entry per changed field, with touchpoint and initiator."""
    rows = await service.profile_changelog(
        uow, principal.project_id, customer_id, before_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(rows, limit, lambda r: [str(r.id)])
    return Page(items=[ChangeRead.model_validate(r) for r in items], next_cursor=next_cursor)
