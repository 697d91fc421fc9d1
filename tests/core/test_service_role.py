"""The service's database role (migration 0015): history cannot be rewritten even by a bug
in the service, because its connections lack the privileges, not only because of triggers."""

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.core.db import Database
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, identify

SERVICE_ROLE = "cdp_service"

# Append-only tables: the service may read and add rows, nothing else.
READ_AND_APPEND_ONLY = [
    "profile_changelog",
    "identifier_history",
    "subscription_history",
    "segment_history",
    "point_transactions",
    "point_spends",
    "customer_merges",
]
# The only columns the service may update in them: a merge moves point transactions to the
# survivor; an erase replaces personal values with the marker.
UPDATABLE_COLUMNS = {
    ("point_transactions", "customer_id"),
    ("point_transactions", "reason"),
    ("point_transactions", "reference"),
    ("customer_merges", "details"),
}


@pytest.fixture
async def as_service(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection made the way the service makes its own (the `role` startup parameter)."""
    connection = await asyncpg.connect(
        _asyncpg_dsn(database_url), server_settings={"role": SERVICE_ROLE}
    )
    try:
        yield connection
    finally:
        await connection.close()


async def test_the_service_connects_as_its_role_and_reset_role_keeps_it(app: FastAPI) -> None:
    database: Database = app.state.database
    async with database.engine.connect() as connection:
        assert await connection.scalar(text("SELECT current_user")) == SERVICE_ROLE
        await connection.execute(text("RESET ROLE"))
        assert await connection.scalar(text("SELECT current_user")) == SERVICE_ROLE


@pytest.mark.parametrize("table", READ_AND_APPEND_ONLY)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {table} SET project_id = project_id", "DELETE FROM {table}", "TRUNCATE {table}"],
)
async def test_history_tables_refuse_the_service_any_rewrite(
    as_service: asyncpg.Connection, table: str, statement: str
) -> None:
    if table == "point_spends":
        statement = statement.replace("project_id = project_id", "amount = amount")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await as_service.execute(statement.format(table=table))


async def test_only_the_listed_columns_of_history_tables_are_updatable(
    as_service: asyncpg.Connection,
) -> None:
    rows = await as_service.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = ANY($1::text[]) "
        "AND has_column_privilege($2, format('public.%I', table_name), column_name, 'UPDATE')",
        READ_AND_APPEND_ONLY,
        SERVICE_ROLE,
    )
    assert {(row["table_name"], row["column_name"]) for row in rows} == UPDATABLE_COLUMNS


async def test_every_table_with_a_history_trigger_is_read_and_append_only(
    as_service: asyncpg.Connection,
) -> None:
    """A history table added later gets the trigger; this makes sure it gets the grants too."""
    guarded = await as_service.fetch(
        "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname LIKE 'trg\\_%\\_append\\_only'"
    )
    assert guarded
    assert {row["relname"] for row in guarded} <= set(READ_AND_APPEND_ONLY)


async def test_the_service_may_write_every_other_table(as_service: asyncpg.Connection) -> None:
    rows = await as_service.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'alembic_version' AND NOT tablename = ANY($1::text[]) "
        "AND NOT (has_table_privilege($2, format('%I.%I', schemaname, tablename), 'SELECT') "
        "AND has_table_privilege($2, format('%I.%I', schemaname, tablename), 'INSERT') "
        "AND has_table_privilege($2, format('%I.%I', schemaname, tablename), 'UPDATE') "
        "AND has_table_privilege($2, format('%I.%I', schemaname, tablename), 'DELETE'))",
        READ_AND_APPEND_ONLY,
        SERVICE_ROLE,
    )
    assert [row["tablename"] for row in rows] == []
    assert not await as_service.fetchval(
        "SELECT has_table_privilege($1, 'public.alembic_version', 'UPDATE')", SERVICE_ROLE
    )


async def test_the_service_cannot_create_tables_outside_the_staging_schema(
    as_service: asyncpg.Connection,
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_service.execute("CREATE TABLE public.smuggled (id int)")
    async with as_service.transaction():
        await as_service.execute("CREATE TABLE import_staging.probe (id int)")
        await as_service.execute("DROP TABLE import_staging.probe")


async def test_a_bug_in_the_service_cannot_forge_the_changelog(
    app: FastAPI, client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    """Even with the redaction switch of migration 0014 turned on, the service's own
    connection cannot UPDATE the changelog: only the owner's redaction functions can."""
    await identify(client, project, {"identifiers": {"email": "lp@example.com"}})
    database: Database = app.state.database
    async with database.engine.connect() as connection:
        await connection.execute(text("SET LOCAL cdp.redacting = 'on'"))
        with pytest.raises(Exception, match="permission denied for table profile_changelog"):
            await connection.execute(
                text("UPDATE profile_changelog SET new_value = '\"[erased]\"'")
            )
    async with database.engine.connect() as connection:
        forged = await connection.scalar(
            text("SELECT count(*) FROM profile_changelog WHERE new_value = '\"[erased]\"'")
        )
        assert forged == 0


async def test_the_service_cannot_call_the_redaction_functions_outside_its_role(
    database_url: str,
) -> None:
    """The SECURITY DEFINER functions are not for everyone (no EXECUTE for PUBLIC)."""
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        granted = await connection.fetch(
            "SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS anyone, "
            "has_function_privilege($1, p.oid, 'EXECUTE') AS service "
            "FROM pg_proc p WHERE p.proname LIKE 'cdp\\_redact\\_%' AND p.prosecdef",
            SERVICE_ROLE,
        )
    finally:
        await connection.close()
    assert {row["proname"] for row in granted} == {
        "cdp_redact_profile_changelog",
        "cdp_redact_identifier_history",
        "cdp_redact_subscription_history",
    }
    assert all(row["service"] and not row["anyone"] for row in granted)
