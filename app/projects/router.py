"""HTTP endpoints of projects (tenants) and their API keys."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

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
from app.projects import service
from app.projects.auth import AdminDep, PrincipalDep
from app.projects.models import ApiKey, Project
from app.projects.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ProjectCreate,
    ProjectCreated,
    ProjectRead,
    ProjectUpdate,
)
from app.projects.service import IssuedKey

_AUTH_ERRORS = (401, 403, 429)
projects_router = APIRouter(
    prefix="/v1/projects", tags=["projects"], responses=problem_responses(*_AUTH_ERRORS, 422)
)
api_keys_router = APIRouter(
    prefix="/v1/api-keys", tags=["api-keys"], responses=problem_responses(*_AUTH_ERRORS, 422)
)


def _project_cursor(project: Project) -> list[str]:
    return [str(project.id)]


def _key_cursor(key: ApiKey) -> list[str]:
    return [str(key.id)]


def _key_created(issued: IssuedKey) -> ApiKeyCreated:
    read = ApiKeyRead.model_validate(issued.api_key)
    return ApiKeyCreated(**read.model_dump(), key=issued.token)


@projects_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="projects_create",
)
async def projects_create(
    body: ProjectCreate, uow: UnitOfWorkDep, _admin: AdminDep
) -> ProjectCreated:
    """Create a project (tenant); the response carries its first admin key, shown only once."""
    project, issued = await service.create_project(
        uow, name=body.name, default_phone_region=body.default_phone_region
    )
    read = ProjectRead.model_validate(project)
    return ProjectCreated(**read.model_dump(), admin_key=_key_created(issued))


@projects_router.get("", operation_id="projects_list")
async def projects_list(
    uow: UnitOfWorkDep,
    admin: AdminDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
) -> Page[ProjectRead]:
    """List the projects the calling key may administer: its own."""
    rows = await service.list_projects(
        uow, after_id=decode_id_cursor(cursor), limit=limit + 1, visible_to=admin
    )
    items, next_cursor = split_page(rows, limit, _project_cursor)
    return Page(items=[ProjectRead.model_validate(p) for p in items], next_cursor=next_cursor)


@projects_router.get("/current", operation_id="projects_get_current")
async def projects_get_current(uow: UnitOfWorkDep, principal: PrincipalDep) -> ProjectRead:
    """Show the project the calling key belongs to."""
    return ProjectRead.model_validate(await service.get_project(uow, principal.project_id))


@projects_router.patch("/current", operation_id="projects_update_current")
async def projects_update_current(
    body: ProjectUpdate, uow: UnitOfWorkDep, admin: AdminDep
) -> ProjectRead:
    """Change the settings of the calling key's project."""
    project = await service.update_project(
        uow, admin.project_id, body.model_dump(include=body.model_fields_set)
    )
    return ProjectRead.model_validate(project)


@api_keys_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
    operation_id="api_keys_create",
)
async def api_keys_create(body: ApiKeyCreate, uow: UnitOfWorkDep, admin: AdminDep) -> ApiKeyCreated:
    """Create an API key in the caller's project; the key is in this response only."""
    issued = await service.create_api_key(
        uow,
        admin.project_id,
        name=body.name,
        kind=body.kind,
        scopes=body.scopes,
        touchpoint=body.touchpoint,
        allowed_touchpoints=body.allowed_touchpoints,
        expires_at=body.expires_at,
    )
    return _key_created(issued)


@api_keys_router.get("", operation_id="api_keys_list")
async def api_keys_list(
    uow: UnitOfWorkDep,
    admin: AdminDep,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> Page[ApiKeyRead]:
    """List the API keys of the caller's project (never their secrets)."""
    rows = await service.list_api_keys(
        uow,
        admin.project_id,
        after_id=decode_id_cursor(cursor),
        limit=limit + 1,
        include_revoked=include_revoked,
    )
    items, next_cursor = split_page(rows, limit, _key_cursor)
    return Page(items=[ApiKeyRead.model_validate(k) for k in items], next_cursor=next_cursor)


@api_keys_router.get("/{key_id}", responses=problem_responses(404), operation_id="api_keys_get")
async def api_keys_get(key_id: uuid.UUID, uow: UnitOfWorkDep, admin: AdminDep) -> ApiKeyRead:
    """Show one API key of the caller's project."""
    return ApiKeyRead.model_validate(await service.get_api_key(uow, admin.project_id, key_id))


@api_keys_router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    operation_id="api_keys_revoke",
)
async def api_keys_revoke(key_id: uuid.UUID, uow: UnitOfWorkDep, admin: AdminDep) -> Response:
    """Revoke an API key at once; requests with it get 401 from now on."""
    await service.revoke_api_key(uow, admin.project_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
