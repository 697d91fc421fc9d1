"""HTTP endpoints of the customer's whole record: the 360 profile, the export (right of
access) and erase (right to be forgotten); and the audit count of personal-data reads."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import UnitOfWorkDep
from app.core.problems import problem_responses
from app.customers.dossier import SECTION_NAMES
from app.customers.erase import erase_customer
from app.customers.presenters import customer_read
from app.customers.profile import customer_profile, export_customer
from app.customers.schemas import (
    CustomerErasedRead,
    CustomerExport,
    CustomerProfileRead,
    ProfileSectionRead,
    SectionName,
)
from app.projects.auth import require_actor, require_scope

privacy_router = APIRouter(
    prefix="/v1/customers",
    tags=["customers"],
    responses=problem_responses(401, 403, 422, 429),
)
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
EraserDep = Annotated[Actor, Depends(require_actor(Scope.CUSTOMERS_ERASE))]
ExporterDep = Annotated[Actor, Depends(require_actor(Scope.CUSTOMERS_READ))]


@privacy_router.get(
    "/{customer_id}/profile",
    responses=problem_responses(404),
    operation_id="customers_get_profile",
)
async def customers_get_profile(
    customer_id: uuid.UUID,
    request: Request,
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    include: Annotated[
        list[SectionName] | None,
        Query(description="Sections to include (repeat the parameter); default: all."),
    ] = None,
    latest: Annotated[int, Query(ge=1, le=100, description="Rows per section.")] = 10,
) -> CustomerProfileRead:
    """The 360 profile: the customer (contacts, personal data, identifiers, merged ids,
    auth-token status) and the latest rows of every record kept about it, each section
    with a link to its full, paginated list. A fixed number of queries, however much data
    the customer has."""
    view, sections = await customer_profile(
        uow,
        principal.project_id,
        customer_id,
        include=[str(name) for name in include] if include else SECTION_NAMES,
        latest=latest,
    )
    count_personal_read(request, principal.key_id, "profile")
    return CustomerProfileRead(
        customer=customer_read(view),
        sections={s.name: ProfileSectionRead(items=s.items, href=s.href) for s in sections},
    )


@privacy_router.get(
    "/{customer_id}/export",
    responses={
        **problem_responses(404),
        200: {"model": CustomerExport, "description": "The document, streamed"},
    },
    response_class=StreamingResponse,
    operation_id="customers_export",
)
async def customers_export(
    customer_id: uuid.UUID, request: Request, uow: UnitOfWorkDep, actor: ExporterDep
) -> StreamingResponse:
    """Everything stored about the customer (right of access) as one JSON document,
    streamed: the customer, then every section in full, history included. Each export is
    recorded in the customer's changelog."""
    document = await export_customer(uow, actor, customer_id)
    count_personal_read(request, actor.key_id, "export")
    return StreamingResponse(
        document,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'},
    )


def count_personal_read(request: Request, key_id: uuid.UUID | None, operation: str) -> None:
    metrics = request.app.state.metrics
    metrics.personal_data_reads.labels(key_id=str(key_id), operation=operation).inc()


@privacy_router.delete(
    "/{customer_id}",
    responses=problem_responses(404, 409),
    operation_id="customers_erase",
)
async def customers_erase(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, actor: EraserDep
) -> CustomerErasedRead:
    """Erase a customer (right to be forgotten): personal data is removed from the profile,
    identifiers, devices and action payloads and replaced by "[erased]" in the changelogs;
    ledgers, merges and counts stay consistent; the identifiers may be used again. A
    merged id erases its survivor and everyone merged into it. Scope `customers:erase`."""
    erased = await erase_customer(uow, actor, customer_id)
    return CustomerErasedRead(
        id=erased.id, erased_ids=erased.erased_ids, erased_at=erased.erased_at
    )
