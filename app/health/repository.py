"""SQL of the readiness check."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def applied_revision(session: AsyncSession) -> str | None:
    """The revision in alembic_version, or None on a database never migrated."""
    exists = await session.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return None
    revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
    return str(revision) if revision is not None else None
