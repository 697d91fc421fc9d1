"""Shared steps of the fault tests: an app behind the faulty proxy, what a project left behind."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from app.core.db import UnitOfWork
from app.core.db_errors import RETRY_AFTER_SECONDS
from tests.conftest import _asyncpg_dsn
from tests.core.test_problems import assert_problem
from tests.factories import ProjectWithKey, make_project
from tests.faults.proxy import FaultyProxy, faulty_proxy
from tests.helpers import app_running, asgi_client

# Tables a customer's creation writes to, and the per-project history tables.
FOOTPRINT_TABLES = (
    "customers",
    "customer_identifiers",
    "identifier_history",
    "profile_changelog",
    "actions",
    "idempotency_keys",
)


@dataclass
class ProxiedApp:
    """An app whose every database connection goes through `proxy`."""

    proxy: FaultyProxy
    app: FastAPI
    http: httpx.AsyncClient
    owner: ProjectWithKey

    @property
    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.app.state.database.sessions)


@asynccontextmanager
async def proxied_app(database_url: str, **overrides: Any) -> AsyncIterator[ProxiedApp]:
    """A fresh app (so no connection has prepared a statement yet) behind a fresh proxy."""
    async with faulty_proxy(database_url) as proxy:
        async with app_running(proxy.url, **overrides) as app:
            owner = await make_project(UnitOfWork(app.state.database.sessions), name="faults")
            async with asgi_client(app) as http:
                yield ProxiedApp(proxy=proxy, app=app, http=http, owner=owner)


def assert_unavailable(response: httpx.Response) -> str:
    """A 503 problem telling the client when to come back; its detail."""
    body = assert_problem(response, 503)
    assert body["type"] == "urn:cdp:problem:service-unavailable"
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    return str(body["detail"])


async def footprint(database_url: str, project_id: uuid.UUID) -> dict[str, int]:
    """Rows per table the project owns: equal before and after a request that applied nothing."""
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return {
            table: int(
                await connection.fetchval(
                    f"SELECT count(*) FROM {table} WHERE project_id = $1",
                    project_id,
                )
            )
            for table in FOOTPRINT_TABLES
        }
    finally:
        await connection.close()
