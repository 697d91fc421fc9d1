"""Idempotency keys are remembered for their retention, then deleted by housekeeping."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from app.core import idempotency
from app.core.db import UnitOfWork
from tests.activity.support import ORDER_SCHEMA, customer, declare, record
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey
from tests.helpers import app_running

DAY = timedelta(hours=24)


def _order(customer_id: str, n: int) -> dict[str, object]:
    return {
        "customer": {"customer_id": customer_id},
        "type": "order.placed",
        "occurred_at": "2026-11-02T10:00:00Z",
        "payload": {"order_id": f"A-{n}", "total": n},
    }


async def _age_key(database_url: str, key: str, by: timedelta) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        await connection.execute(
            "UPDATE idempotency_keys SET created_at = created_at - $1::interval WHERE key = $2",
            by,
            key,
        )
    finally:
        await connection.close()


async def _keys(database_url: str) -> set[str]:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return {row["key"] for row in await connection.fetch("SELECT key FROM idempotency_keys")}
    finally:
        await connection.close()


async def _add_old_keys(database_url: str, project_id: uuid.UUID, count: int) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        await connection.executemany(
            "INSERT INTO idempotency_keys (id, project_id, operation, key, fingerprint, "
            "status_code, response, created_at) "
            "VALUES ($1, $2, 'test', $3, 'f', 201, '{}', now() - interval '2 days')",
            [(uuid.uuid4(), project_id, f"old-{n}") for n in range(count)],
        )
    finally:
        await connection.close()


async def test_a_key_past_its_retention_is_deleted_and_a_younger_one_still_replays(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, database_url: str
) -> None:
    await declare(client, project, "order.placed", ORDER_SCHEMA)
    jane = await customer(client, project, "jane@example.com")
    first_old = await record(client, project, _order(jane, 1), headers={"Idempotency-Key": "old"})
    first_young = await record(
        client, project, _order(jane, 2), headers={"Idempotency-Key": "young"}
    )
    assert first_old.status_code == first_young.status_code == 201, first_old.text
    await _age_key(database_url, "old", DAY + timedelta(minutes=1))
    await _age_key(database_url, "young", DAY - timedelta(minutes=1))

    purged = await idempotency.purge_expired(uow, now=datetime.now(UTC), retention=DAY)

    assert purged == 1
    assert await _keys(database_url) == {"young"}
    young_again = await record(
        client, project, _order(jane, 2), headers={"Idempotency-Key": "young"}
    )
    assert young_again.content == first_young.content
    # Past the retention the key is a new request: the action is stored a second time.
    old_again = await record(client, project, _order(jane, 1), headers={"Idempotency-Key": "old"})
    assert old_again.status_code == 201
    assert old_again.json()["id"] != first_old.json()["id"]


async def test_a_backlog_is_deleted_in_batches_until_none_is_left(
    project: ProjectWithKey, uow: UnitOfWork, database_url: str
) -> None:
    await _add_old_keys(database_url, project.project.id, 12)

    purged = await idempotency.purge_expired(uow, now=datetime.now(UTC), retention=DAY, batch=5)

    assert purged == 12
    assert await _keys(database_url) == set()


async def test_the_service_purges_on_its_own(project: ProjectWithKey, database_url: str) -> None:
    await _add_old_keys(database_url, project.project.id, 3)
    async with app_running(database_url, idempotency_purge_interval_seconds=0.05):
        for _ in range(200):
            if not await _keys(database_url):
                break
            await asyncio.sleep(0.05)
    assert await _keys(database_url) == set()
