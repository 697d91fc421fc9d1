"""Issuing under concurrency: many real connections committing against each other."""

import asyncio
from collections import Counter

import asyncpg
import httpx

from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey
from tests.promotions.helpers import customer, issue, pool, upload

REQUESTS = 200
CODES = 150
CUSTOMERS = 20


async def test_200_concurrent_issues_from_a_pool_of_150(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    await pool(client, project, "rush")
    uploaded = await upload(client, project, "rush", [f"RUSH-{i:04d}" for i in range(CODES)])
    assert uploaded.json()["added"] == CODES
    # Several requests per customer (they queue on its row) and many customers at once
    # (they race for the same codes).
    customers = [await customer(client, project, f"c{i}@example.com") for i in range(CUSTOMERS)]

    responses = await asyncio.gather(
        *(
            issue(client, project, customers[i % CUSTOMERS], "rush", f"rush-{i}")
            for i in range(REQUESTS)
        )
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: CODES, 409: REQUESTS - CODES}, statuses
    issued = [r.json()["code"] for r in responses if r.status_code == 201]
    assert len(set(issued)) == CODES
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["type"] == "urn:cdp:problem:conflict"
        assert "no free code" in refused.json()["detail"]
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch("SELECT status, count(*) AS n FROM promo_codes GROUP BY 1")
        per_customer = await connection.fetch(
            "SELECT customer_id::text AS id, count(*) AS n FROM promo_codes "
            "WHERE customer_id IS NOT NULL GROUP BY 1"
        )
        changelog = await connection.fetchval(
            "SELECT count(*) FROM profile_changelog WHERE operation = 'promo_code_issued'"
        )
    finally:
        await connection.close()
    assert {row["status"]: row["n"] for row in rows} == {"issued": CODES}
    assert changelog == CODES
    expected = Counter(
        customers[i % CUSTOMERS] for i, r in enumerate(responses) if r.status_code == 201
    )
    assert {row["id"]: row["n"] for row in per_customer} == dict(expected)
