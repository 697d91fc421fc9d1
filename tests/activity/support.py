"""Shared helpers of the activity tests: declaring types, recording actions, counting rows."""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, identify

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["order_id", "total"],
    "additionalProperties": False,
}


def moments_ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


async def declare(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    key: str = "order.placed",
    schema: dict[str, Any] | None = None,
) -> httpx.Response:
    body = {"key": key, "payload_schema": ORDER_SCHEMA if schema is None else schema}
    response = await client.post("/v1/action-types", headers=owner.admin_headers, json=body)
    assert response.status_code == 201, response.text
    return response


async def customer(client: httpx.AsyncClient, owner: ProjectWithKey, email: str) -> str:
    response = await identify(client, owner, {"identifiers": {"email": email}})
    assert response.status_code in (200, 201), response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


def order(customer_ref: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": customer_ref,
        "type": "order.placed",
        "occurred_at": moments_ago(hours=1),
        "payload": {"order_id": "A-1", "total": 10.5},
    }
    return body | overrides


async def record(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/actions", headers={**owner.admin_headers, **(headers or {})}, json=body
    )


async def feed(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str, **params: Any
) -> httpx.Response:
    return await client.get(
        f"/v1/customers/{customer_id}/actions", headers=owner.admin_headers, params=params
    )


async def count_rows(database_url: str, table: str) -> int:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await connection.close()
