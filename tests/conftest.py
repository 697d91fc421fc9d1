"""Test harness: one real PostgreSQL database per test process, migrated once, emptied after
each test.

CDP_TEST_DATABASE_URL names the database to use (it is wiped); without it the embedded
server is started in the user's cache folder, as `cdp serve` would with no configuration.
Under pytest-xdist each worker gets its own database next to that one, named after the
worker (`test_gw0`, `test_gw1`, ...), created on first use and wiped like the first.
"""

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import platformdirs
import pytest
from fastapi import FastAPI
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import make_url

from app.core import migrations
from app.core.db import UnitOfWork, async_database_url, create_database
from app.core.embedded_postgres import start_embedded_postgres
from app.imports.staging import STAGE_SCHEMA
from tests.factories import ProjectWithKey, make_project
from tests.fuzz.tally import TALLY
from tests.helpers import app_running, asgi_client, run_sync, settings_for_tests

EMBEDDED_TEST_DATABASE = "cdp_test"

# Hypothesis (the invariant suite, schemathesis) keeps caches and, on failure, patches in a
# folder: outside the work tree. Set at import, before Hypothesis touches its storage.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cdp-tests-hypothesis")


# Migrating creates the cluster-wide service role: two workers doing it at once on a fresh
# cluster would both try to create it. They take this advisory lock (in the shared base
# database, since advisory locks are per database) around the reset and the migration.
_MIGRATION_LOCK = 0x0CD9_7E57


def _base_database_url() -> str:
    configured = os.environ.get("CDP_TEST_DATABASE_URL")
    if configured:
        return configured
    data_dir = Path(platformdirs.user_cache_dir("cdp", appauthor=False)) / "test-postgres"
    return start_embedded_postgres(data_dir, database=EMBEDDED_TEST_DATABASE)


def _worker_database_url(base_url: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return base_url
    url = make_url(base_url)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


async def _prepare_database(base_url: str, url: str) -> None:
    """Create the worker's database if needed, then wipe and migrate it, one worker at a time."""
    lock = await asyncpg.connect(_asyncpg_dsn(base_url))
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        name = make_url(url).database
        exists = await lock.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await lock.execute(f'CREATE DATABASE "{name}"')
        await _reset_schema(url)
        await asyncio.to_thread(migrations.upgrade, url)
    finally:
        await lock.close()


async def _reset_schema(url: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute(
            f"DROP SCHEMA IF EXISTS {STAGE_SCHEMA} CASCADE; "
            "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;"
        )
    finally:
        await connection.close()


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def fetch_rows(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """One query on a connection of its own (outside the app's pool and transactions)."""
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url() -> str:
    base_url = _base_database_url()
    url = _worker_database_url(base_url)
    run_sync(_prepare_database(base_url, url))
    return url


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with app_running(database_url) as running:
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


@pytest.fixture
def uow(app: FastAPI) -> UnitOfWork:
    return UnitOfWork(app.state.database.sessions)


@pytest.fixture
async def owner_uow(database_url: str) -> AsyncIterator[UnitOfWork]:
    """Use cases as the schema's owner (partition maintenance), not as the service's role."""
    settings = settings_for_tests(database_url)
    database = create_database(async_database_url(database_url), settings, as_owner=True)
    try:
        yield UnitOfWork(database.sessions)
    finally:
        await database.dispose()


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test starts from empty tables (the schema stays: migrated once per run)."""
    yield
    if "database_url" not in request.fixturenames:
        return
    await empty_tables(request.getfixturevalue("database_url"))


async def empty_tables(url: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        # An import a test left unfinished keeps its staging table: drop it, so that it
        # cannot leak into the next test.
        for row in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1", STAGE_SCHEMA
        ):
            await connection.execute(f'DROP TABLE {STAGE_SCHEMA}."{row["tablename"]}"')
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        # TRUNCATE costs per table (and per partition); most tests write to a few tables.
        names_of_tables = [row["tablename"] for row in tables]
        probes = " UNION ALL ".join(
            f"SELECT '{name}' AS name WHERE EXISTS (SELECT 1 FROM \"{name}\")"
            for name in names_of_tables
        )
        written = await connection.fetch(probes) if probes else []
        if written:
            names = ", ".join(f'"{row["name"]}"' for row in written)
            await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


@pytest.fixture
async def project(uow: UnitOfWork) -> ProjectWithKey:
    return await make_project(uow, name="acme")


@pytest.fixture
async def other_project(uow: UnitOfWork) -> ProjectWithKey:
    return await make_project(uow, name="globex")


# The spec fuzzing's counts (tests/fuzz/tally.py), summed over the xdist workers.
_FUZZ_TALLY_KEY = "fuzz_tally"


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None and TALLY.cases:
        worker_output[_FUZZ_TALLY_KEY] = TALLY.export()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    exported = getattr(node, "workeroutput", {}).get(_FUZZ_TALLY_KEY)
    if exported is not None:
        TALLY.merge(exported)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.cases:
        terminalreporter.write_line(TALLY.summary())
