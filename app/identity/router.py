"""HTTP endpoints of the identifier blocklist: values that never identify anyone."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from app.core.auth import Principal, Scope
from app.core.dependencies import UnitOfWorkDep
from app.core.problems import problem_responses
from app.identity import blocklist
from app.identity.blocklist import BlockRule
from app.identity.schemas import BlocklistEntryCreate, BlocklistEntryRead
from app.projects.auth import AdminDep, require_scope

router = APIRouter(
    prefix="/v1/identifier-blocklist",
    tags=["identifier-blocklist"],
    responses=problem_responses(401, 403, 422, 429),
)
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]


def _entry(rule: BlockRule) -> BlocklistEntryRead:
    return BlocklistEntryRead(
        id=rule.id, kind=rule.kind, pattern=rule.pattern, is_regex=rule.is_regex, source=rule.source
    )


@router.get("", operation_id="identifier_blocklist_list")
async def identifier_blocklist_list(
    uow: UnitOfWorkDep, principal: ReaderDep
) -> list[BlocklistEntryRead]:
    """List the built-in entries and the project's own."""
    return [_entry(rule) for rule in await blocklist.list_rules(uow, principal.project_id)]


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="identifier_blocklist_create")
async def identifier_blocklist_create(
    body: BlocklistEntryCreate, uow: UnitOfWorkDep, admin: AdminDep
) -> BlocklistEntryRead:
    """Add a value or pattern that must never identify a customer of this project."""
    rule = await blocklist.add_rule(
        uow, admin.project_id, kind=body.kind, pattern=body.pattern, is_regex=body.is_regex
    )
    return _entry(rule)


@router.delete(
    "/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    operation_id="identifier_blocklist_delete",
)
async def identifier_blocklist_delete(
    entry_id: uuid.UUID, uow: UnitOfWorkDep, admin: AdminDep
) -> Response:
    """Remove one of the project's own entries (built-in entries stay)."""
    await blocklist.remove_rule(uow, admin.project_id, entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
