"""Use cases of tenants and API keys, shared by the HTTP API and the CLI."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import auth
from app.core.auth import Principal, ProjectSettings, Scope
from app.core.db import UnitOfWork
from app.core.errors import Conflict, NotFound, Unauthenticated
from app.identity import kinds
from app.projects import repository
from app.projects.models import ApiKey, Project

DEFAULT_PROJECT_NAME = "default"
# last_used_at is informative; writing it on every request would cost a write per read.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    """A key row and its token, which exists only here and in the one response that shows it."""

    api_key: ApiKey
    token: str


async def create_project(
    uow: UnitOfWork, *, name: str, default_phone_region: str | None = None
) -> tuple[Project, IssuedKey]:
    """A new tenant with its first admin key."""
    async with uow:
        project = await _add_project(uow.session, name=name, region=default_phone_region)
        issued = await _issue_key(
            uow.session,
            project_id=project.id,
            name="admin",
            scopes=[Scope.ADMIN],
            touchpoint="admin",
            allowed_touchpoints=[],
            expires_at=None,
        )
        return project, issued


async def _add_project(session: AsyncSession, *, name: str, region: str | None) -> Project:
    if await repository.get_project_by_name(session, name) is not None:
        raise Conflict(f"A project named {name!r} already exists.")
    return await repository.add_project(session, Project(name=name, default_phone_region=region))


async def get_project(uow: UnitOfWork, project_id: uuid.UUID) -> Project:
    async with uow:
        return await _existing_project(uow.session, project_id)


async def get_project_by_name(uow: UnitOfWork, name: str) -> Project:
    async with uow:
        project = await repository.get_project_by_name(uow.session, name)
        if project is None:
            raise NotFound(f"No project named {name!r}.")
        return project


async def _existing_project(session: AsyncSession, project_id: uuid.UUID) -> Project:
    project = await repository.get_project(session, project_id)
    if project is None:
        raise NotFound(f"No project {project_id}.")
    return project


async def list_projects(
    uow: UnitOfWork, *, after_id: uuid.UUID | None, limit: int, visible_to: Principal | None
) -> list[Project]:
    """Projects ordered by id; a key sees only its own project, the CLI (no key) sees all."""
    only_id = visible_to.project_id if visible_to is not None else None
    async with uow:
        return await repository.list_projects(
            uow.session, after_id=after_id, limit=limit, only_id=only_id
        )


async def update_project(
    uow: UnitOfWork, project_id: uuid.UUID, changes: dict[str, Any]
) -> Project:
    """Set the settings in `changes` (a merge patch: only what the caller sent)."""
    async with uow:
        project = await _existing_project(uow.session, project_id)
        for name, value in changes.items():
            setattr(project, name, value)
        await uow.session.flush()
        await uow.session.refresh(project)
        return project


async def create_api_key(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    name: str,
    scopes: list[Scope],
    kind: str = "secret",
    touchpoint: str | None = None,
    allowed_touchpoints: list[str] | None = None,
    expires_at: datetime | None = None,
) -> IssuedKey:
    async with uow:
        await _existing_project(uow.session, project_id)
        return await _issue_key(
            uow.session,
            project_id=project_id,
            name=name,
            kind=kind,
            scopes=scopes,
            touchpoint=touchpoint or name,
            allowed_touchpoints=allowed_touchpoints or [],
            expires_at=expires_at,
        )


async def _issue_key(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    name: str,
    kind: str = "secret",
    scopes: list[Scope],
    touchpoint: str,
    allowed_touchpoints: list[str],
    expires_at: datetime | None,
) -> IssuedKey:
    generated = auth.generate_key()
    key = ApiKey(
        project_id=project_id,
        name=name,
        kind=kind,
        prefix=generated.prefix,
        secret_hash=generated.secret_hash,
        scopes=sorted(set(scopes)),
        touchpoint=touchpoint,
        allowed_touchpoints=sorted(set(allowed_touchpoints)),
        expires_at=expires_at,
    )
    return IssuedKey(api_key=await repository.add_api_key(session, key), token=generated.token)


async def list_api_keys(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    after_id: uuid.UUID | None,
    limit: int,
    include_revoked: bool,
) -> list[ApiKey]:
    async with uow:
        return await repository.list_api_keys(
            uow.session,
            project_id=project_id,
            after_id=after_id,
            limit=limit,
            include_revoked=include_revoked,
        )


async def get_api_key(uow: UnitOfWork, project_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    async with uow:
        return await _existing_key(uow.session, project_id, key_id)


async def _existing_key(session: AsyncSession, project_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    key = await repository.get_api_key(session, project_id=project_id, key_id=key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    return key


async def revoke_api_key(uow: UnitOfWork, project_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """Revoking is immediate and final; revoking a revoked key changes nothing."""
    async with uow:
        key = await _existing_key(uow.session, project_id, key_id)
        await repository.revoke_api_key(uow.session, key)
        return key


async def authenticate(uow: UnitOfWork, token: str) -> Principal:
    """The Principal of a bearer token, or Unauthenticated (never saying which part was wrong)."""
    parts = auth.split_key(token)
    if parts is None:
        raise Unauthenticated("The API key is malformed; expected cdp_<prefix>_<secret>.")
    prefix, secret = parts
    async with uow.read_only() as session:
        key = await repository.key_with_project(session, prefix)
    # Hash even for unknown prefixes so timing does not reveal which prefixes exist.
    stored_hash = key.secret_hash if key is not None else b"\0" * 32
    if not auth.secret_matches(secret, stored_hash) or key is None:
        raise Unauthenticated("The API key is not valid.")
    now = datetime.now(UTC)
    if key.revoked_at is not None:
        raise Unauthenticated("The API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("The API key has expired.")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        async with uow:
            await repository.touch_api_key(uow.session, key.id, at=now)
    return Principal(
        project_id=key.project_id,
        key_id=key.id,
        key_name=key.name,
        scopes=frozenset(Scope(s) for s in key.scopes),
        touchpoint=key.touchpoint,
        project=ProjectSettings(
            default_phone_region=key.default_phone_region,
            rules_version=key.rules_version,
            identifier_priority=tuple(key.identifier_priority or kinds.DEFAULT_PRIORITY),
            subscription_channels=tuple(key.subscription_channels or ()),
        ),
        allowed_touchpoints=frozenset(key.allowed_touchpoints),
        kind=key.kind,
    )


async def settings_of(session: AsyncSession, project_id: uuid.UUID) -> ProjectSettings:
    """A project's settings as a request would see them, for work done outside a request
    (a background job acting for the project)."""
    project = await repository.get_project(session, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.")
    return ProjectSettings(
        default_phone_region=project.default_phone_region,
        rules_version=project.rules_version,
        identifier_priority=tuple(project.identifier_priority or kinds.DEFAULT_PRIORITY),
        subscription_channels=tuple(project.subscription_channels or ()),
    )


async def bump_rules_version(session: AsyncSession, project_id: uuid.UUID) -> None:
    """Custom fields or the blocklist changed: caches of them must reload (same transaction)."""
    await repository.bump_rules_version(session, project_id)


async def bootstrap_default_project(uow: UnitOfWork) -> IssuedKey | None:
    """On an empty database, the `default` project and its admin key; None if any project exists."""
    async with uow:
        if await repository.count_projects(uow.session) > 0:
            return None
    _, issued = await create_project(uow, name=DEFAULT_PROJECT_NAME)
    return issued
