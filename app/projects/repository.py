"""All SQL of projects and API keys."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import project_page_query
from app.projects.models import ApiKey, Project


async def add_project(session: AsyncSession, project: Project) -> Project:
    session.add(project)
    await session.flush()
    await session.refresh(project)
    return project


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def get_project_by_name(session: AsyncSession, name: str) -> Project | None:
    result = await session.scalars(select(Project).where(Project.name == name))
    return result.one_or_none()


async def list_projects(
    session: AsyncSession, *, after_id: uuid.UUID | None, limit: int, only_id: uuid.UUID | None
) -> list[Project]:
    query = select(Project).order_by(Project.id).limit(limit)
    if after_id is not None:
        query = query.where(Project.id > after_id)
    if only_id is not None:
        query = query.where(Project.id == only_id)
    return list(await session.scalars(query))


async def count_projects(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Project)) or 0)


async def add_api_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key


async def get_api_key(
    session: AsyncSession, *, project_id: uuid.UUID, key_id: uuid.UUID
) -> ApiKey | None:
    result = await session.scalars(
        select(ApiKey).where(ApiKey.project_id == project_id, ApiKey.id == key_id)
    )
    return result.one_or_none()


_KEY_WITH_PROJECT = (
    select(
        ApiKey.id,
        ApiKey.project_id,
        ApiKey.name,
        ApiKey.kind,
        ApiKey.secret_hash,
        ApiKey.scopes,
        ApiKey.touchpoint,
        ApiKey.allowed_touchpoints,
        ApiKey.expires_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
        Project.default_phone_region,
        Project.rules_version,
        Project.identifier_priority,
        Project.subscription_channels,
    )
    .join(Project, Project.id == ApiKey.project_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)


async def key_with_project(session: AsyncSession, prefix: str) -> Any:
    """The key and the project settings every request needs: one statement on the hot path.

    A row with the columns of _KEY_WITH_PROJECT, or None.
    """
    return (await session.execute(_KEY_WITH_PROJECT, {"prefix": prefix})).first()


async def bump_rules_version(session: AsyncSession, project_id: uuid.UUID) -> None:
    await session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(rules_version=Project.rules_version + 1)
    )


async def list_api_keys(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    after_id: uuid.UUID | None,
    limit: int,
    include_revoked: bool,
) -> list[ApiKey]:
    query = project_page_query(ApiKey, project_id=project_id, after_id=after_id, limit=limit)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(await session.scalars(query))


async def revoke_api_key(session: AsyncSession, key: ApiKey) -> None:
    """Sets revoked_at once; a second revoke keeps the first instant."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    await session.refresh(key)


async def touch_api_key(session: AsyncSession, key_id: uuid.UUID, *, at: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
