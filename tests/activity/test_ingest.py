"""Recording actions: validation with pointers, customers found or created, retries stored
once (Idempotency-Key and external_id), batches that store the good and report the bad."""

import asyncio
from typing import Any

import httpx
import pytest

from app.activity.payloads import PAYLOAD_MAX_BYTES
from app.activity.schemas import MAX_BATCH_ACTIONS
from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.activity.support import count_rows, customer, declare, moments_ago, order, record
from tests.factories import ProjectWithKey, bearer, make_key


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectWithKey) -> str:
    await declare(client, project)
    return await customer(client, project, "jane@example.com")


async def test_an_action_is_recorded_for_the_customer_an_identifier_names(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str
) -> None:
    occurred_at = moments_ago(hours=2)
    response = await record(
        client,
        project,
        order(
            {"email": "  JANE@example.com"},
            occurred_at=occurred_at,
            payload={"order_id": "A-1", "total": 10.5, "items": ["sku-1"]},
        ),
        headers={"X-Request-ID": "req-action-1"},
    )
    assert response.status_code == 201, response.text
    action = response.json()
    assert action["customer_id"] == action["origin_customer_id"] == jane
    assert (action["type"], action["payload"], action["system"]) == (
        "order.placed",
        {"order_id": "A-1", "total": 10.5, "items": ["sku-1"]},
        False,
    )
    assert (action["touchpoint"], action["initiator"]) == ("admin", "admin")
    by_id = await record(client, project, order({"customer_id": jane}))
    assert by_id.status_code == 201
    assert by_id.json()["customer_id"] == jane


async def test_payload_violations_are_422_with_every_pointer_and_store_nothing(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    response = await record(
        client,
        project,
        order(
            {"customer_id": jane},
            payload={"total": -3, "items": ["ok", 7, None], "coupon": "X"},
        ),
    )
    assert response.status_code == 422, response.text
    errors = [(e["location"], e["pointer"]) for e in response.json()["errors"]]
    assert errors == [
        ("body", "/payload"),  # order_id is required
        ("body", "/payload"),  # coupon is not allowed
        ("body", "/payload/items/1"),
        ("body", "/payload/items/2"),
        ("body", "/payload/total"),
    ]
    assert await count_rows(database_url, "actions") == 0


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"type": "never.declared"}, "/type"),
        ({"type": "system.update"}, "/type"),
        ({"occurred_at": "2026-01-01T10:00:00"}, "/occurred_at"),
        ({"occurred_at": moments_ago(days=-2)}, "/occurred_at"),
        ({"payload": {"blob": "x" * PAYLOAD_MAX_BYTES}}, "/payload"),
        # Found by the spec fuzzing: an integer beyond 64 bits was a 500.
        ({"payload": {"n": -(2**98)}}, "/payload"),
        ({"customer": {}}, "/customer"),
        ({"customer": {"email": "not an email"}}, "/customer/email"),
        ({"external_id": ""}, "/external_id"),
        ({"extra": 1}, "/extra"),
    ],
)
async def test_invalid_actions_are_422_and_store_nothing(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    jane: str,
    database_url: str,
    change: dict[str, Any],
    pointer: str,
) -> None:
    body = order({"email": "jane@example.com"}) | change
    response = await record(client, project, body)
    assert response.status_code == 422, response.text
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    assert await count_rows(database_url, "actions") == 0


async def test_an_unknown_customer_is_404_unless_created(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    unknown = await record(client, project, order({"email": "new@example.com"}))
    assert unknown.status_code == 404
    invalid = await record(
        client,
        project,
        order({"email": "new@example.com"}, create_customer=True, payload={"total": 1}),
    )
    assert invalid.status_code == 422
    assert await count_rows(database_url, "customers") == 1  # an invalid action creates nobody
    created = await record(
        client, project, order({"email": "new@example.com"}, create_customer=True)
    )
    assert created.status_code == 201, created.text
    found = await client.get(
        "/v1/customers/lookup",
        headers=project.admin_headers,
        params={"email": "new@example.com"},
    )
    assert found.json()["id"] == created.json()["customer_id"]
    existing = await record(
        client, project, order({"email": "jane@example.com"}, create_customer=True)
    )
    assert existing.json()["customer_id"] == jane


async def test_identifiers_of_two_customers_are_409(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    card_holder = await client.post(
        "/v1/customers/identify",
        headers=project.admin_headers,
        json={"identifiers": {"discount_cards": ["CARD-1"]}},
    )
    assert card_holder.status_code == 201
    clash = await record(
        client, project, order({"email": "jane@example.com", "discount_cards": ["CARD-1"]})
    )
    assert clash.status_code == 409, clash.text
    assert {e["pointer"] for e in clash.json()["errors"]} == {
        "/customer/email",
        "/customer/discount_cards/0",
    }
    assert await count_rows(database_url, "actions") == 0


async def test_a_retry_with_the_idempotency_key_is_stored_once(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    body = order({"customer_id": jane})
    key = {"Idempotency-Key": "order-A-1-try"}
    first = await record(client, project, body, headers=key)
    again = await record(client, project, body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    other_body = await record(client, project, order({"customer_id": jane}), headers=key)
    assert other_body.status_code == 409
    assert await count_rows(database_url, "actions") == 1


async def test_concurrent_retries_with_one_key_store_one_action(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    body = order({"email": "jane@example.com"})
    key = {"Idempotency-Key": "concurrent-1"}
    responses = await asyncio.gather(
        *(record(client, project, body, headers=key) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_rows(database_url, "actions") == 1


async def test_an_external_id_is_stored_once(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    body = order({"customer_id": jane}, external_id="order-A-1")
    first = await record(client, project, body)
    assert first.status_code == 201
    # The same action sent again, naming the customer another way: a duplicate.
    resent = await record(client, project, body | {"customer": {"email": "jane@example.com"}})
    assert resent.status_code == 200
    assert resent.json() == first.json()
    changed = await record(client, project, body | {"payload": {"order_id": "A-1", "total": 99}})
    assert changed.status_code == 409
    assert [e["pointer"] for e in changed.json()["errors"]] == ["/external_id"]
    assert await count_rows(database_url, "actions") == 1


async def test_concurrent_sends_of_one_external_id_store_one_action(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    body = order({"customer_id": jane}, external_id="order-race")
    responses = await asyncio.gather(*(record(client, project, body) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_rows(database_url, "actions") == 1


async def test_a_batch_stores_the_good_and_reports_the_bad(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    at = moments_ago(hours=3)
    stored_before = await record(
        client, project, order({"customer_id": jane}, external_id="e-0", occurred_at=at)
    )
    actions = [
        order({"customer_id": jane}, external_id="e-1", occurred_at=at),
        order({"customer_id": jane}, payload={"order_id": 5, "total": 1}),
        order({"email": "nobody@example.com"}),
        {"customer": {"customer_id": jane}, "occurred_at": moments_ago(hours=1)},
        order({"email": "jane@example.com"}, external_id="e-1", occurred_at=at),
        order({"email": "new@example.com"}, create_customer=True),
        order({"customer_id": jane}, external_id="e-0", occurred_at=at),
        order(
            {"customer_id": jane},
            external_id="e-0",
            occurred_at=at,
            payload={"order_id": "B", "total": 2},
        ),
    ]
    response = await client.post(
        "/v1/actions/batch", headers=project.admin_headers, json={"actions": actions}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["stored"], result["duplicates"], result["rejected"]) == (2, 2, 4)
    items = result["items"]
    assert [i["status"] for i in items] == [
        "stored",
        "rejected",
        "rejected",
        "rejected",
        "duplicate",
        "stored",
        "duplicate",
        "rejected",
    ]
    assert [e["pointer"] for e in items[1]["errors"]] == ["/actions/1/payload/order_id"]
    assert [e["pointer"] for e in items[2]["errors"]] == ["/actions/2/customer"]
    assert [e["pointer"] for e in items[3]["errors"]] == ["/actions/3/type"]
    assert [e["pointer"] for e in items[7]["errors"]] == ["/actions/7/external_id"]
    assert items[4]["id"] == items[0]["id"]
    assert items[6]["id"] == stored_before.json()["id"]
    assert await count_rows(database_url, "actions") == 3


async def test_a_batch_with_an_idempotency_key_replays(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    body = {"actions": [order({"customer_id": jane}), order({"customer_id": jane})]}
    headers = {**project.admin_headers, "Idempotency-Key": "batch-1"}
    first = await client.post("/v1/actions/batch", headers=headers, json=body)
    again = await client.post("/v1/actions/batch", headers=headers, json=body)
    assert first.content == again.content
    assert await count_rows(database_url, "actions") == 2


@pytest.mark.parametrize(
    ("actions", "pointer"), [([], "/actions"), ([{}] * (MAX_BATCH_ACTIONS + 1), "/actions")]
)
async def test_a_batch_over_its_limits_is_refused_whole(
    client: httpx.AsyncClient, project: ProjectWithKey, actions: list[Any], pointer: str
) -> None:
    response = await client.post(
        "/v1/actions/batch", headers=project.admin_headers, json={"actions": actions}
    )
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]


async def test_a_thousand_actions_in_one_batch(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    actions = [
        {
            "customer": {"customer_id": jane},
            "type": "order.placed",
            "occurred_at": moments_ago(minutes=i),
            "payload": {"order_id": f"A-{i}", "total": i},
            "external_id": f"bulk-{i}",
        }
        for i in range(MAX_BATCH_ACTIONS)
    ]
    response = await client.post(
        "/v1/actions/batch", headers=project.admin_headers, json={"actions": actions}
    )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == MAX_BATCH_ACTIONS
    assert await count_rows(database_url, "actions") == MAX_BATCH_ACTIONS


async def test_ingest_needs_the_write_scope(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, uow: UnitOfWork
) -> None:
    reader = bearer(await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ]))
    response = await client.post("/v1/actions", headers=reader, json=order({"customer_id": jane}))
    assert response.status_code == 403


async def test_another_projects_customer_is_404(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    other_project: ProjectWithKey,
    jane: str,
    database_url: str,
) -> None:
    await declare(client, other_project)
    by_id = await record(client, other_project, order({"customer_id": jane}))
    assert by_id.status_code == 404
    by_email = await record(client, other_project, order({"email": "jane@example.com"}))
    assert by_email.status_code == 404
    feed = await client.get(f"/v1/customers/{jane}/actions", headers=other_project.admin_headers)
    assert feed.status_code == 404
    assert await count_rows(database_url, "actions") == 0


async def test_a_batch_rejects_an_integer_beyond_64_bits_and_stores_the_rest(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    """Found by the spec fuzzing: such a payload made the whole batch a 500."""
    actions = [
        order({"customer_id": jane}, payload={"order_id": "A", "total": 1, "n": 2**80}),
        order({"customer_id": jane}),
    ]
    # With an Idempotency-Key too: the key's fingerprint is taken of the raw batch.
    headers = {**project.admin_headers, "Idempotency-Key": "big-numbers"}
    response = await client.post("/v1/actions/batch", headers=headers, json={"actions": actions})
    assert response.status_code == 200, response.text
    replay = await client.post("/v1/actions/batch", headers=headers, json={"actions": actions})
    assert replay.content == response.content
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["rejected", "stored"]
    assert [e["pointer"] for e in items[0]["errors"]] == ["/actions/0/payload"]
    assert "64 bits" in items[0]["errors"][0]["message"]
    assert await count_rows(database_url, "actions") == 1
