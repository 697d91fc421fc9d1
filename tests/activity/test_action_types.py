"""Action types: declared with a JSON Schema that is checked up front; replacing it moves
the version, and ingest follows the new schema at once."""

from typing import Any

import httpx
import pytest

from app.activity.payloads import SCHEMA_MAX_BYTES
from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.activity.support import ORDER_SCHEMA, customer, declare, order, record
from tests.factories import ProjectWithKey, bearer, make_key


async def test_declare_read_list_and_patch(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    created = await declare(client, project)
    body = created.json()
    assert (body["key"], body["version"], body["payload_schema"]) == (
        "order.placed",
        1,
        ORDER_SCHEMA,
    )
    await declare(client, project, "page.viewed", {})

    read = await client.get("/v1/action-types/order.placed", headers=project.admin_headers)
    assert read.json() == body
    first = await client.get("/v1/action-types", headers=project.admin_headers, params={"limit": 1})
    assert [t["key"] for t in first.json()["items"]] == ["order.placed"]
    second = await client.get(
        "/v1/action-types",
        headers=project.admin_headers,
        params={"limit": 1, "cursor": first.json()["next_cursor"]},
    )
    assert [t["key"] for t in second.json()["items"]] == ["page.viewed"]
    assert second.json()["next_cursor"] is None

    described = await client.patch(
        "/v1/action-types/order.placed",
        headers=project.admin_headers,
        json={"description": "An order in the shop"},
    )
    assert (described.json()["description"], described.json()["version"]) == (
        "An order in the shop",
        1,
    )
    replaced = await client.patch(
        "/v1/action-types/order.placed",
        headers=project.admin_headers,
        json={"payload_schema": {"type": "object"}},
    )
    assert (replaced.json()["payload_schema"], replaced.json()["version"]) == (
        {"type": "object"},
        2,
    )


async def test_a_taken_key_is_409_and_an_unknown_one_404(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    await declare(client, project)
    again = await client.post(
        "/v1/action-types",
        headers=project.admin_headers,
        json={"key": "order.placed", "payload_schema": {}},
    )
    assert again.status_code == 409
    missing = await client.get("/v1/action-types/nothing.here", headers=project.admin_headers)
    assert missing.status_code == 404
    patched = await client.patch(
        "/v1/action-types/nothing.here", headers=project.admin_headers, json={"description": "x"}
    )
    assert patched.status_code == 404


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        (
            {"key": "order.placed", "payload_schema": {"type": "objekt"}},
            ["/payload_schema/type"],
        ),
        (
            {
                "key": "order.placed",
                "payload_schema": {"properties": {"total": {"minimum": "zero"}}},
            },
            ["/payload_schema/properties/total/minimum"],
        ),
        (
            {
                "key": "order.placed",
                "payload_schema": {"properties": {"a": {"$ref": "https://example.com/s.json"}}},
            },
            ["/payload_schema/properties/a/$ref"],
        ),
        (
            {"key": "order.placed", "payload_schema": {"$ref": "#/$defs/missing"}},
            ["/payload_schema/$ref"],
        ),
        (
            {
                "key": "order.placed",
                "payload_schema": {"$schema": "http://json-schema.org/draft-07/schema#"},
            },
            ["/payload_schema/$schema"],
        ),
        (
            {
                "key": "order.placed",
                "payload_schema": {"enum": ["x" * 1000] * (SCHEMA_MAX_BYTES // 1000 + 1)},
            },
            ["/payload_schema"],
        ),
        ({"key": "order.placed", "payload_schema": {"maximum": 2**70}}, ["/payload_schema"]),
        ({"key": "system.update", "payload_schema": {}}, ["/key"]),
        ({"key": "Order Placed", "payload_schema": {}}, ["/key"]),
    ],
)
async def test_bad_declarations_are_422_with_pointers(
    client: httpx.AsyncClient, project: ProjectWithKey, body: dict[str, Any], pointers: list[str]
) -> None:
    response = await client.post("/v1/action-types", headers=project.admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == pointers
    listed = await client.get("/v1/action-types", headers=project.admin_headers)
    assert listed.json()["items"] == []


async def test_a_schema_that_references_itself_is_accepted(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    schema = {
        "$defs": {"money": {"type": "number", "minimum": 0}},
        "type": "object",
        "properties": {"total": {"$ref": "#/$defs/money"}},
    }
    await declare(client, project, "refund.issued", schema)
    someone = await customer(client, project, "refs@example.com")
    bad = await record(
        client,
        project,
        order({"customer_id": someone}, type="refund.issued", payload={"total": -1}),
    )
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/payload/total"]


async def test_ingest_follows_a_replaced_schema_at_once(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    await declare(client, project)
    someone = await customer(client, project, "schema@example.com")
    body = order({"customer_id": someone}, payload={"order_id": "A-1", "total": 1})
    assert (await record(client, project, body)).status_code == 201
    stricter = {**ORDER_SCHEMA, "required": ["order_id", "total", "items"]}
    await client.patch(
        "/v1/action-types/order.placed",
        headers=project.admin_headers,
        json={"payload_schema": stricter},
    )
    refused = await record(client, project, body)
    assert refused.status_code == 422
    assert [e["message"] for e in refused.json()["errors"]] == ["'items' is a required property"]


async def test_only_admin_declares_and_readers_read(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    await declare(client, project)
    reader = bearer(await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ]))
    writer = bearer(
        await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_WRITE], name="writer")
    )
    assert (await client.get("/v1/action-types", headers=reader)).status_code == 200
    declared = await client.post(
        "/v1/action-types", headers=writer, json={"key": "x.y", "payload_schema": {}}
    )
    assert declared.status_code == 403
    patched = await client.patch(
        "/v1/action-types/order.placed", headers=writer, json={"description": "x"}
    )
    assert patched.status_code == 403


async def test_another_projects_types_are_invisible(
    client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
) -> None:
    await declare(client, project)
    theirs = await client.get("/v1/action-types/order.placed", headers=other_project.admin_headers)
    assert theirs.status_code == 404
    listed = await client.get("/v1/action-types", headers=other_project.admin_headers)
    assert listed.json()["items"] == []
    # The same key is free in another project.
    await declare(client, other_project)
