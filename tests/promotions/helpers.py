"""Shared steps of the promotions tests: customers, pools, codes, and counting rows."""

from typing import Any

import asyncpg
import httpx

from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, identify


async def customer(client: httpx.AsyncClient, owner: ProjectWithKey, email: str) -> str:
    response = await identify(client, owner, {"identifiers": {"email": email}})
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


async def pool(
    client: httpx.AsyncClient, owner: ProjectWithKey, key: str = "spring", **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/promo-pools", headers=owner.admin_headers, json={"key": key, "name": key, **extra}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def upload(
    client: httpx.AsyncClient, owner: ProjectWithKey, key: str, codes: list[Any]
) -> httpx.Response:
    return await client.post(
        f"/v1/promo-pools/{key}/codes", headers=owner.admin_headers, json={"codes": codes}
    )


async def issue(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    customer_id: str,
    pool_key: str,
    idempotency_key: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/customers/{customer_id}/promo-codes",
        headers={**owner.admin_headers, "Idempotency-Key": idempotency_key},
        json={"pool": pool_key},
    )


async def redeem(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    code: str,
    customer_id: str,
    **extra: Any,
) -> httpx.Response:
    headers = dict(owner.admin_headers)
    if "idempotency_key" in extra:
        headers["Idempotency-Key"] = extra.pop("idempotency_key")
    return await client.post(
        f"/v1/promo-codes/{code}/redeem",
        headers=headers,
        json={"customer_id": customer_id, **extra},
    )


async def row_counts(database_url: str) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        statuses = await connection.fetch(
            "SELECT status, count(*) AS n FROM promo_codes GROUP BY status"
        )
        return {
            "codes": {row["status"]: row["n"] for row in statuses},
            "redeemed_at": await connection.fetchval(
                "SELECT count(*) FROM promo_codes WHERE redeemed_at IS NOT NULL"
            ),
            "prizes": await connection.fetchval("SELECT count(*) FROM prizes"),
            "claimed": await connection.fetchval(
                "SELECT count(*) FROM prizes WHERE claimed_at IS NOT NULL"
            ),
            "changelog": await connection.fetchval("SELECT count(*) FROM profile_changelog"),
            "idempotency_keys": await connection.fetchval("SELECT count(*) FROM idempotency_keys"),
            "versions": await connection.fetchval("SELECT sum(version) FROM customers"),
        }
    finally:
        await connection.close()


async def changelog(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/customers/{customer_id}/changelog", headers=owner.admin_headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
