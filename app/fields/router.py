"""HTTP endpoints of custom field definitions."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from app.core.auth import Principal, Scope
from app.core.dependencies import UnitOfWorkDep
from app.core.pagination import (
    DEFAULT_PAGE_LIMIT,
    Page,
    PageCursor,
    PageLimit,
    decode_id_cursor,
    split_page,
)
from app.core.problems import problem_responses
from app.fields import service
from app.fields.models import CustomField
from app.fields.schemas import FieldCreate, FieldRead
from app.fields.values import FieldEntity
from app.projects.auth import AdminDep, require_scope

router = APIRouter(
    prefix="/v1/fields", tags=["fields"], responses=problem_responses(401, 403, 429, 422)
)

ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]


def _field_cursor(field: CustomField) -> list[str]:
    return [str(field.id)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="fields_create",
)
async def fields_create(body: FieldCreate, uow: UnitOfWorkDep, admin: AdminDep) -> FieldRead:
    """Define a custom field; it is immutable, since stored values must keep matching it."""
    field = await service.create_field(
        uow,
        admin.project_id,
        entity=body.entity,
        key=body.key,
        label=body.label,
        field_type=body.type,
        enum_values=body.enum_values,
        max_length=body.max_length,
    )
    return FieldRead.model_validate(field)


@router.get("", operation_id="fields_list")
async def fields_list(
    uow: UnitOfWorkDep,
    reader: ReaderDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    entity: Annotated[FieldEntity | None, Query(description="Only fields of this entity.")] = None,
) -> Page[FieldRead]:
    """List the custom fields of the caller's project, oldest first."""
    rows = await service.list_fields(
        uow,
        reader.project_id,
        entity=entity,
        after_id=decode_id_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = split_page(rows, limit, _field_cursor)
    return Page(items=[FieldRead.model_validate(f) for f in items], next_cursor=next_cursor)


@router.get("/{key}", responses=problem_responses(404), operation_id="fields_get")
async def fields_get(
    key: Annotated[str, Path(max_length=64)],
    uow: UnitOfWorkDep,
    reader: ReaderDep,
    entity: Annotated[FieldEntity, Query(description="The entity the field extends.")] = (
        FieldEntity.CUSTOMER
    ),
) -> FieldRead:
    """Show one custom field of the caller's project by its key."""
    field = await service.get_field(uow, reader.project_id, entity=entity, key=key)
    return FieldRead.model_validate(field)
