"""Alembic environment: async engine, URL from Settings (or the caller), constraint naming."""

import asyncio
import logging.config

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.db import Base, async_database_url
from app.core.embedded_postgres import start_embedded_postgres
from app.models import import_all_models
from app.settings import Settings

config = context.config
# Only the alembic CLI configures logging here; `cdp` has configured it already.
if config.config_file_name is not None and "database_url" not in config.attributes:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

import_all_models()
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url is not None:
        return str(url)
    settings = Settings()
    # Migrations run as the schema's owner (CDP_MIGRATION_DATABASE_URL when the service's
    # login is another role).
    owner_url = settings.migration_database_url or settings.database_url
    if owner_url is not None:
        return owner_url
    return start_embedded_postgres(settings.data_dir)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(async_database_url(_database_url()), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=async_database_url(_database_url()).render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
