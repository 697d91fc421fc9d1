"""HTTP endpoints of promo pools and codes, and of prizes."""

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Header, Path, Query, UploadFile, status
from fastapi.responses import JSONResponse, Response

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import UnitOfWorkDep
from app.core.errors import UnsupportedMediaType
from app.core.idempotency import IdempotentRequest
from app.core.limits import RouteBodyLimit
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
from app.promotions import presenters, service
from app.promotions.codes import MAX_CODE_LENGTH
from app.promotions.schemas import (
    MAX_CODE_FILE_BYTES,
    POOL_KEY_PATTERN,
    CodeFileUpload,
    CodeIssue,
    CodeRedeem,
    CodeStatus,
    CodesUpload,
    PoolCreate,
    PoolDetail,
    PoolRead,
    PrizeCreate,
    PrizeRead,
    PrizeStatus,
    PromoCodeRead,
    UploadResult,
)
from app.promotions.service import CodesQuery, PrizeGiven, PrizesQuery

router = APIRouter(tags=["loyalty"], responses=problem_responses(401, 403, 404, 422, 429))
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
UploaderDep = Annotated[Principal, Depends(require_scope(Scope.LOYALTY_WRITE))]
WriterDep = Annotated[Actor, Depends(require_actor(Scope.LOYALTY_WRITE))]
PoolKeyPath = Annotated[str, Path(pattern=POOL_KEY_PATTERN)]
_IDEMPOTENCY_DESCRIPTION = (
    "Retries with the same key and body replay the first answer; the same key with another "
    "body is a 409."
)
OptionalIdempotencyKey = Annotated[
    str | None, Header(min_length=1, max_length=255, description=_IDEMPOTENCY_DESCRIPTION)
]

# A file of 100,000 codes outgrows the general body limit (CDP_MAX_BODY_BYTES, 1 MiB by
# default), so the file route alone gets a larger one; app/main.py hands it to the guard.
CODE_FILE_BODY_LIMIT = RouteBodyLimit(
    path=re.compile(r"/v1/promo-pools/[^/]+/codes/file"), max_body_bytes=MAX_CODE_FILE_BYTES
)
_FILE_CHUNK_BYTES = 64 * 1024
# What browsers and curl call a CSV or text file (curl says octet-stream for other names).
_FILE_MEDIA_TYPES = ("text/", "application/octet-stream", "application/vnd.ms-excel")


@router.post(
    "/v1/promo-pools",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="loyalty_create_promo_pool",
)
async def loyalty_create_promo_pool(
    body: PoolCreate, uow: UnitOfWorkDep, admin: AdminDep
) -> PoolRead:
    """Create a pool of promo codes (one promotion), optionally valid only for a time."""
    pool = await service.create_pool(
        uow,
        admin.project_id,
        key=body.key,
        name=body.name,
        description=body.description,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    return PoolRead.model_validate(pool)


@router.get("/v1/promo-pools", operation_id="loyalty_list_promo_pools")
async def loyalty_list_promo_pools(
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[PoolRead]:
    """List the project's promo pools in the order they were created."""
    found = await service.list_pools(
        uow, principal.project_id, after_id=decode_id_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = split_page(found, limit, lambda p: [str(p.id)])
    return Page(items=[PoolRead.model_validate(p) for p in items], next_cursor=next_cursor)


@router.get("/v1/promo-pools/{key}", operation_id="loyalty_get_promo_pool")
async def loyalty_get_promo_pool(
    key: PoolKeyPath, uow: UnitOfWorkDep, principal: ReaderDep
) -> PoolDetail:
    """Read a promo pool with how many of its codes are available, issued and redeemed."""
    found = await service.get_pool(uow, principal.project_id, key)
    return PoolDetail(**PoolRead.model_validate(found.pool).model_dump(), codes=found.counts)


@router.post(
    "/v1/promo-pools/{key}/codes",
    responses=problem_responses(413),
    operation_id="loyalty_upload_promo_codes",
)
async def loyalty_upload_promo_codes(
    key: PoolKeyPath, body: CodesUpload, uow: UnitOfWorkDep, principal: UploaderDep
) -> UploadResult:
    """Add codes to a pool: valid ones are stored, duplicates skipped, invalid ones listed."""
    return await service.upload_codes(uow, principal.project_id, key, body.codes)


@router.post(
    "/v1/promo-pools/{key}/codes/file",
    responses=problem_responses(413, 415),
    operation_id="loyalty_upload_promo_code_file",
)
async def loyalty_upload_promo_code_file(
    key: PoolKeyPath,
    body: Annotated[CodeFileUpload, File(media_type="multipart/form-data")],
    uow: UnitOfWorkDep,
    principal: UploaderDep,
) -> UploadResult:
    """Add up to 100,000 codes from a file upload (multipart/form-data, part `file`)."""
    file = body.file
    media_type = (file.content_type or "application/octet-stream").lower()
    if not media_type.startswith(_FILE_MEDIA_TYPES):
        raise UnsupportedMediaType(
            f"The file is {media_type}; send a CSV or plain text file, one code per line."
        )
    return await service.upload_code_file(uow, principal.project_id, key, _chunks(file))


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(_FILE_CHUNK_BYTES):
        yield chunk


@router.post(
    "/v1/customers/{customer_id}/promo-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=PromoCodeRead,
    responses=problem_responses(409),
    operation_id="loyalty_issue_promo_code",
)
async def loyalty_issue_promo_code(
    customer_id: uuid.UUID,
    body: CodeIssue,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=255,
            description="Required: a retry with the same key and body returns the same "
            "code; another body with the same key is a 409.",
        ),
    ],
) -> Response:
    """Issue the pool's next free code to the customer; 409 when the pool has none left."""
    idempotent = IdempotentRequest.of(
        idempotency_key,
        "loyalty_issue_promo_code",
        {"customer_id": str(customer_id), **body.model_dump(mode="json")},
    )
    stored = await service.issue_code(uow, actor, customer_id, body.pool, idempotent=idempotent)
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.post(
    "/v1/promo-codes/{code}/redeem",
    response_model=PromoCodeRead,
    responses=problem_responses(409),
    operation_id="loyalty_redeem_promo_code",
)
async def loyalty_redeem_promo_code(
    code: Annotated[str, Path(min_length=1, max_length=MAX_CODE_LENGTH)],
    body: CodeRedeem,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    idempotency_key: OptionalIdempotencyKey = None,
) -> Response:
    """Redeem a code issued to the customer; someone else's, or a used one, is a 409."""
    idempotent = (
        IdempotentRequest.of(
            idempotency_key,
            "loyalty_redeem_promo_code",
            {"code": code, **body.model_dump(mode="json")},
        )
        if idempotency_key is not None
        else None
    )
    stored = await service.redeem_code(
        uow,
        actor,
        code,
        customer_id=body.customer_id,
        order_reference=body.order_reference,
        idempotent=idempotent,
    )
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.get("/v1/customers/{customer_id}/promo-codes", operation_id="loyalty_list_promo_codes")
async def loyalty_list_promo_codes(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    status_filter: Annotated[
        CodeStatus | None, Query(alias="status", description="Only codes in this status.")
    ] = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[PromoCodeRead]:
    """The customer's promo codes and their status, most recently issued first."""
    query = CodesQuery(status=status_filter, before=decode_time_id_cursor(cursor), limit=limit + 1)
    rows = await service.customer_codes(uow, principal.project_id, customer_id, query)
    items, next_cursor = split_page(
        rows, limit, lambda row: [_isoformat(row[0].issued_at), str(row[0].id)]
    )
    return Page(
        items=[presenters.code_read(code, pool_key) for code, pool_key in items],
        next_cursor=next_cursor,
    )


def _isoformat(at: datetime | None) -> str:
    # Codes of a customer were all issued; the guard is for the type checker.
    if at is None:
        raise ValueError("a customer's code without issued_at")
    return at.isoformat()


@router.post(
    "/v1/customers/{customer_id}/prizes",
    status_code=status.HTTP_201_CREATED,
    response_model=PrizeRead,
    responses=problem_responses(409),
    operation_id="loyalty_give_prize",
)
async def loyalty_give_prize(
    customer_id: uuid.UUID,
    body: PrizeCreate,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    idempotency_key: OptionalIdempotencyKey = None,
) -> Response:
    """Record a prize the customer won in a campaign (status `issued` until claimed)."""
    idempotent = (
        IdempotentRequest.of(
            idempotency_key,
            "loyalty_give_prize",
            {"customer_id": str(customer_id), **body.model_dump(mode="json")},
        )
        if idempotency_key is not None
        else None
    )
    given = PrizeGiven(campaign=body.campaign, prize=body.prize, details=body.details)
    stored = await service.give_prize(uow, actor, customer_id, given, idempotent=idempotent)
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.post(
    "/v1/customers/{customer_id}/prizes/{prize_id}/claim",
    response_model=PrizeRead,
    responses=problem_responses(409),
    operation_id="loyalty_claim_prize",
)
async def loyalty_claim_prize(
    customer_id: uuid.UUID,
    prize_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: WriterDep,
    idempotency_key: OptionalIdempotencyKey = None,
) -> Response:
    """Mark the customer's prize claimed (handed over); a second claim is a 409."""
    idempotent = (
        IdempotentRequest.of(
            idempotency_key,
            "loyalty_claim_prize",
            {"customer_id": str(customer_id), "prize_id": str(prize_id)},
        )
        if idempotency_key is not None
        else None
    )
    stored = await service.claim_prize(uow, actor, customer_id, prize_id, idempotent=idempotent)
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.get("/v1/customers/{customer_id}/prizes", operation_id="loyalty_list_prizes")
async def loyalty_list_prizes(
    customer_id: uuid.UUID,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    status_filter: Annotated[
        PrizeStatus | None, Query(alias="status", description="Only prizes in this status.")
    ] = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[PrizeRead]:
    """The customer's prizes, newest first."""
    query = PrizesQuery(status=status_filter, before_id=decode_id_cursor(cursor), limit=limit + 1)
    found = await service.customer_prizes(uow, principal.project_id, customer_id, query)
    items, next_cursor = split_page(found, limit, lambda p: [str(p.id)])
    return Page(items=[presenters.prize_read(p) for p in items], next_cursor=next_cursor)
