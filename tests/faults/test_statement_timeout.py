"""A statement stopped by the statement timeout is the database being slow, not a bug:
503 with Retry-After, the transaction rolled back, and no personal value in the log."""

import logging
import uuid

import asyncpg
import pytest

from app.core.db import UnitOfWork
from tests.conftest import _asyncpg_dsn
from tests.factories import make_project
from tests.helpers import app_running, asgi_client

EMAIL = "slow.lock@example.com"


async def test_a_statement_timeout_is_a_503_and_changes_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_running(database_url, db_statement_timeout_ms=300) as app:
        project = await make_project(UnitOfWork(app.state.database.sessions), name="slow")
        async with asgi_client(app) as http:
            created = await http.post(
                "/v1/customers/identify",
                headers=project.admin_headers,
                json={"identifiers": {"email": EMAIL}},
            )
            assert created.status_code == 201, created.text
            customer_id = created.json()["customer"]["id"]
            holder = await asyncpg.connect(_asyncpg_dsn(database_url))
            try:
                # Another transaction holds the customer's row: the PATCH waits for it
                # until its statement times out.
                async with holder.transaction():
                    await holder.execute(
                        "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE",
                        uuid.UUID(customer_id),
                    )
                    with caplog.at_level(logging.WARNING):
                        patched = await http.patch(
                            f"/v1/customers/{customer_id}",
                            headers=project.admin_headers,
                            json={"profile": {"first_name": "Late"}},
                        )
            finally:
                await holder.close()
            after = await http.get(f"/v1/customers/{customer_id}", headers=project.admin_headers)
    assert patched.status_code == 503, patched.text
    assert patched.headers["content-type"] == "application/problem+json"
    assert int(patched.headers["retry-after"]) >= 1
    assert "statement timeout" in patched.json()["detail"]
    assert after.json()["profile"]["first_name"] is None
    assert "Late" not in caplog.text
    assert EMAIL not in caplog.text
