"""The benchmark database: dropped, created, migrated, given a project, a key, the action
type of the ingest scenarios, and seeded."""

import asyncio
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy import make_url

from app.activity import service as activity_service
from app.activity.schemas import ActionTypeCreate
from app.core import migrations
from app.core.db import UnitOfWork, async_database_url, create_database
from app.projects import service as projects_service
from app.settings import Settings
from bench.scenarios import ACTION_SCHEMA, ACTION_TYPE

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
PROJECT_NAME = "bench"

# Ids like the app's (app/core/ids.py: UUIDv7, time-ordered), for rows the baseline inserts.
_UUID7_FUNCTION = """
CREATE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                FROM 3)
            FROM 1 FOR 6), 52, 1), 53, 1),
        'hex')::uuid
$$
"""

# Seeded customers already have the profile the identify_existing scenario sends, so every
# request of that scenario is "unchanged" (no write), like its baseline.
_SEED_STATEMENTS = (
    "CREATE TABLE bench_ids (n serial PRIMARY KEY, id uuid NOT NULL)",
    "INSERT INTO bench_ids (n, id) SELECT i, bench_uuid7() FROM generate_series(1, $1::int) AS i",
    """
    INSERT INTO customers
        (id, project_id, status, first_name, custom_fields, version, created_at, updated_at)
    SELECT id, $1::uuid, 'active', 'Bench', '{}'::jsonb, 1, now(), now()
    FROM bench_ids ORDER BY n
    """,
    """
    INSERT INTO customer_identifiers (id, project_id, customer_id, kind, value, touchpoint)
    SELECT bench_uuid7(), $1::uuid, id, 'email', 'seed' || n || '@bench.example', 'bench-seed'
    FROM bench_ids ORDER BY n
    """,
)


class BenchSetupError(Exception):
    """The benchmark cannot run; the message says why and what to do."""


@dataclass(frozen=True)
class Prepared:
    project_id: uuid.UUID
    key_id: uuid.UUID
    key_prefix: str
    api_key: str
    seed_count: int
    ids_file: Path


def database_name(url: str) -> str:
    """The database the URL names; refuses anything that is not obviously a benchmark's."""
    try:
        name = make_url(url).database
    except Exception as error:
        raise BenchSetupError(f"cannot read the database URL {url!r}: {error}") from error
    if not name or "bench" not in name:
        raise BenchSetupError(
            f"refusing to drop and recreate database {name!r}: its name must contain 'bench'"
        )
    if not _SAFE_NAME.match(name):
        raise BenchSetupError(f"database name {name!r}: use letters, digits and _ only")
    return name


def maintenance_url(url: str) -> str:
    """The same server, database `postgres`: where DROP/CREATE DATABASE run."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        raise BenchSetupError(f"cannot connect to PostgreSQL at {url}: {error}") from error


async def server_facts(url: str) -> dict[str, str | int]:
    connection = await _connect(url)
    try:
        return {
            "version": str(await connection.fetchval("SELECT version()")),
            "server_version": str(await connection.fetchval("SHOW server_version")),
            "max_connections": int(await connection.fetchval("SHOW max_connections")),
            "connections_in_use": int(
                await connection.fetchval("SELECT count(*) FROM pg_stat_activity")
            ),
            "synchronous_commit": str(await connection.fetchval("SHOW synchronous_commit")),
        }
    finally:
        await connection.close()


async def recreate(url: str) -> None:
    name = database_name(url)
    connection = await _connect(maintenance_url(url))
    try:
        # The name is checked against _SAFE_NAME above; identifiers cannot be parameters.
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _create_project(url: str) -> projects_service.IssuedKey:
    """The project, its admin key, and the action type the ingest scenarios record."""
    settings = Settings(database_url=url, db_pool_size=1, db_max_overflow=0)
    database = create_database(async_database_url(url), settings)
    try:
        _, issued = await projects_service.create_project(
            UnitOfWork(database.sessions), name=PROJECT_NAME
        )
        await activity_service.create_action_type(
            UnitOfWork(database.sessions),
            issued.api_key.project_id,
            ActionTypeCreate(
                key=ACTION_TYPE,
                description="A purchase (benchmark)",
                payload_schema=ACTION_SCHEMA,
            ),
        )
        return issued
    finally:
        await database.dispose()


async def _seed(url: str, project_id: uuid.UUID, count: int) -> list[str]:
    """Seeded customer ids, in seed order (seed<i> is the i-th)."""
    connection = await _connect(url)
    try:
        await connection.execute(_UUID7_FUNCTION)
        async with connection.transaction():
            await connection.execute(_SEED_STATEMENTS[0])
            await connection.execute(_SEED_STATEMENTS[1], count)
            await connection.execute(_SEED_STATEMENTS[2], project_id)
            await connection.execute(_SEED_STATEMENTS[3], project_id)
        rows = await connection.fetch("SELECT id FROM bench_ids ORDER BY n")
        # Fresh statistics and no checkpoint debt, so the first measurement is not penalised.
        await connection.execute("VACUUM ANALYZE")
        await connection.execute("CHECKPOINT")
        return [str(row["id"]) for row in rows]
    finally:
        await connection.close()


def prepare(url: str, *, seed_count: int, ids_file: Path) -> Prepared:
    """Drop and create the database, migrate it, create the project, its key and the action
    type, and seed customers."""
    asyncio.run(recreate(url))
    migrations.upgrade(url)
    issued = asyncio.run(_create_project(url))
    key = issued.api_key
    ids = asyncio.run(_seed(url, key.project_id, seed_count))
    ids_file.write_text("".join(f"{customer_id}\n" for customer_id in ids))
    return Prepared(
        project_id=key.project_id,
        key_id=key.id,
        key_prefix=key.prefix,
        api_key=issued.token,
        seed_count=seed_count,
        ids_file=ids_file,
    )
