"""Migrations run down to empty and back up, and the models match the migrated schema."""

import asyncio

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core import migrations
from app.core.db import Base, async_database_url
from app.models import import_all_models
from tests.conftest import _asyncpg_dsn


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


async def _schema_differences(url: str) -> list[object]:
    import_all_models()
    engine = create_async_engine(async_database_url(url), poolclass=NullPool)

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


def test_down_to_empty_and_back_up(database_url: str) -> None:
    migrations.downgrade(database_url, "base")
    assert asyncio.run(_tables(database_url)) == {"alembic_version"}
    migrations.upgrade(database_url)
    assert {"projects", "api_keys"} <= asyncio.run(_tables(database_url))


def test_models_match_the_migrations(database_url: str) -> None:
    assert asyncio.run(_schema_differences(database_url)) == []
