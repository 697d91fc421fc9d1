"""All SQL of custom field definitions."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import project_page_query
from app.fields.models import CustomField


async def add_field(session: AsyncSession, field: CustomField) -> CustomField:
    session.add(field)
    await session.flush()
    await session.refresh(field)
    return field


async def get_field(
    session: AsyncSession, *, project_id: uuid.UUID, entity: str, key: str
) -> CustomField | None:
    result = await session.scalars(
        select(CustomField).where(
            CustomField.project_id == project_id,
            CustomField.entity == entity,
            CustomField.key == key,
        )
    )
    return result.one_or_none()


async def list_fields(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    entity: str | None,
    after_id: uuid.UUID | None,
    limit: int,
) -> list[CustomField]:
    query = project_page_query(CustomField, project_id=project_id, after_id=after_id, limit=limit)
    if entity is not None:
        query = query.where(CustomField.entity == entity)
    return list(await session.scalars(query))


async def all_fields(
    session: AsyncSession, *, project_id: uuid.UUID, entity: str
) -> list[CustomField]:
    """Every field of an entity: a project defines few, and validation needs them all."""
    result = await session.scalars(
        select(CustomField).where(
            CustomField.project_id == project_id, CustomField.entity == entity
        )
    )
    return list(result)


async def count_fields(session: AsyncSession, *, project_id: uuid.UUID, entity: str) -> int:
    query = select(func.count()).where(
        CustomField.project_id == project_id, CustomField.entity == entity
    )
    return int(await session.scalar(query) or 0)
