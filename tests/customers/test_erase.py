"""Erasing a customer: no personal value left anywhere, ledgers intact, identifiers free."""

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, bearer, identify, make_key, make_unique_id_field

EMAIL = "zebulon.quaxley@example.com"
PHONE = "+4915799887766"
CARD = "ZQ-CARD-771"
CRM_ID = "CRM-ZQ-9931"
FIRST, LAST = "Zebulon", "Quaxley"
MERGED_EMAIL = "zq.alt@example.org"
MERGED_FIRST = "Quixotl"
PERSONAL = (EMAIL, PHONE, CARD, CRM_ID, FIRST, LAST, MERGED_EMAIL, MERGED_FIRST)
DEVICE_TOKEN = "zq-push-token-0f9e8d7c6b5a"


async def _ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200, 201)), response.text
    body: dict[str, Any] = response.json()
    return body


async def _customer_with_data_everywhere(client: httpx.AsyncClient, owner: ProjectWithKey) -> str:
    """A customer with records in every domain, and a second one merged into it."""
    headers = owner.admin_headers
    await make_unique_id_field(client, owner, "crm")
    created = await _ok(
        await identify(
            client,
            owner,
            {
                "identifiers": {
                    "email": EMAIL,
                    "phone": PHONE,
                    "discount_cards": [CARD],
                    "external": {"crm": CRM_ID},
                },
                "profile": {"first_name": FIRST, "last_name": LAST, "area": "Berlin"},
            },
        )
    )
    customer_id: str = created["customer"]["id"]
    other = await _ok(
        await identify(
            client,
            owner,
            {"identifiers": {"email": MERGED_EMAIL}, "profile": {"middle_name": MERGED_FIRST}},
        )
    )
    await _ok(
        await client.post(
            "/v1/customers/merge",
            headers=headers | {"Idempotency-Key": "merge-zq"},
            json={"target_id": customer_id, "source_ids": [other["customer"]["id"]]},
        )
    )
    await _ok(
        await client.put(
            f"/v1/customers/{customer_id}/devices/zq-install-1",
            headers=headers,
            json={
                "kind": "mobile_app",
                "app_id": "com.acme.shop",
                "platform": "ios",
                "push_provider": "fcm",
                "push_token": DEVICE_TOKEN,
            },
        )
    )
    await _ok(await client.post(f"/v1/customers/{customer_id}/auth-token", headers=headers))
    await _ok(
        await client.put(
            f"/v1/customers/{customer_id}/subscriptions",
            headers=headers,
            json={
                "subscriptions": [
                    {"channel": "email", "status": "subscribed", "reason": f"asked by {FIRST}"}
                ]
            },
        )
    )
    await _ok(
        await client.post(
            "/v1/action-types",
            headers=headers,
            json={"key": "order.placed", "payload_schema": {"type": "object"}},
        )
    )
    await _ok(
        await client.post(
            "/v1/actions",
            headers=headers,
            json={
                "customer": {"email": EMAIL},
                "type": "order.placed",
                "occurred_at": "2026-11-01T10:00:00Z",
                "payload": {"ship_to": f"{FIRST} {LAST}", "total": 42.5, "items": [PHONE]},
            },
        ),
        201,
        202,
    )
    await _ok(
        await client.post(
            "/v1/point-accounts",
            headers=headers,
            json={"code": "bonus", "name": "Bonus", "precision": 0},
        )
    )
    for key, body in (
        ("p1", {"type": "accrual", "amount": "120", "reference": f"order of {LAST}"}),
        ("p2", {"type": "redemption", "amount": "20", "reason": f"gift for {FIRST}"}),
    ):
        await _ok(
            await client.post(
                f"/v1/customers/{customer_id}/points/transactions",
                headers=headers | {"Idempotency-Key": key},
                json={"account": "bonus"} | body,
            )
        )
    await _ok(
        await client.post(
            f"/v1/customers/{customer_id}/prizes",
            headers=headers,
            json={"campaign": "wheel", "prize": "Mug", "details": {"engraving": FIRST, "qty": 1}},
        )
    )
    return customer_id


async def _tables_containing(database_url: str, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every text, JSON or text-array column of every table, searched for each needle."""
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        columns = await connection.fetch(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "JOIN information_schema.tables USING (table_schema, table_name) "
            "WHERE table_schema IN ('public', 'activity_partitions') "
            "AND table_type = 'BASE TABLE' "
            "AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY')"
        )
        found: dict[str, list[str]] = {}
        for schema, table, column in columns:
            for needle in needles:
                hits = await connection.fetchval(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text ILIKE $1',
                    f"%{needle}%",
                )
                if hits:
                    found.setdefault(needle, []).append(f"{table}.{column}")
        return found
    finally:
        await connection.close()


async def _ledger(database_url: str, customer_id: str) -> tuple[Any, ...]:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT sum(amount) FROM point_transactions WHERE customer_id = $1),"
            " (SELECT available FROM point_balances WHERE customer_id = $1),"
            " (SELECT count(*) FROM actions WHERE customer_id = $1),"
            " (SELECT count(*) FROM profile_changelog WHERE customer_id = $1)",
            uuid.UUID(customer_id),
        )
        assert row is not None
        return tuple(row)
    finally:
        await connection.close()


async def test_after_erase_no_personal_value_is_left_and_the_ledgers_still_sum(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    customer_id = await _customer_with_data_everywhere(client, project)
    found_before = await _tables_containing(database_url, PERSONAL)
    assert set(found_before) == set(PERSONAL), "the fixture must put every value somewhere"
    total, available, actions, changes = await _ledger(database_url, customer_id)
    assert (total, available) == (100, 100)

    erased = await client.delete(f"/v1/customers/{customer_id}", headers=project.admin_headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["id"] == customer_id
    assert len(erased.json()["erased_ids"]) == 2

    assert await _tables_containing(database_url, (*PERSONAL, DEVICE_TOKEN)) == {}
    # The rows stay: the ledger sums, the actions count, the changelog gained the erase.
    assert await _ledger(database_url, customer_id) == (total, available, actions, changes + 1)

    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        erase_row = await connection.fetchrow(
            "SELECT operation, touchpoint, initiator, created_at FROM profile_changelog "
            "WHERE customer_id = $1 ORDER BY id DESC LIMIT 1",
            uuid.UUID(customer_id),
        )
    finally:
        await connection.close()
    assert erase_row is not None
    assert (erase_row["operation"], erase_row["initiator"]) == ("erase", "admin")


async def test_an_erased_customer_is_gone_and_its_identifiers_are_free(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    customer_id = await _customer_with_data_everywhere(client, project)
    headers = project.admin_headers
    assert (await client.delete(f"/v1/customers/{customer_id}", headers=headers)).status_code == 200
    for path in (f"/v1/customers/{customer_id}", f"/v1/customers/{customer_id}/changelog"):
        assert (await client.get(path, headers=headers)).status_code == 404
    assert (await client.delete(f"/v1/customers/{customer_id}", headers=headers)).status_code == 404
    lookup = await client.get("/v1/customers/lookup", params={"email": EMAIL}, headers=headers)
    assert lookup.status_code == 404
    again = await identify(
        client, project, {"identifiers": {"email": EMAIL, "phone": PHONE, "discount_cards": [CARD]}}
    )
    assert again.status_code == 201, again.text
    assert again.json()["customer"]["id"] != customer_id
    merge = await client.post(
        "/v1/customers/merge",
        headers=headers,
        json={"target_id": again.json()["customer"]["id"], "source_ids": [customer_id]},
    )
    assert merge.status_code in (404, 409)


async def test_erase_needs_its_scope_and_stays_in_the_project(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    other_project: ProjectWithKey,
    uow: UnitOfWork,
) -> None:
    created = await identify(client, project, {"identifiers": {"email": EMAIL}})
    customer_id = created.json()["customer"]["id"]
    writer = await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_WRITE])
    refused = await client.delete(f"/v1/customers/{customer_id}", headers=bearer(writer))
    assert refused.status_code == 403
    elsewhere = await client.delete(
        f"/v1/customers/{customer_id}", headers=other_project.admin_headers
    )
    assert elsewhere.status_code == 404
    assert (
        await client.get(f"/v1/customers/{customer_id}", headers=project.admin_headers)
    ).status_code == 200


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE profile_changelog SET new_value = '\"[erased]\"'",
        "SET LOCAL cdp.redacting = 'on'; UPDATE profile_changelog SET new_value = '\"other\"'",
        "SET LOCAL cdp.redacting = 'on'; UPDATE profile_changelog SET operation = 'x'",
        "SET LOCAL cdp.redacting = 'on'; DELETE FROM profile_changelog",
        "SET LOCAL cdp.redacting = 'on'; UPDATE identifier_history SET kind = '[erased]'",
    ],
)
async def test_history_accepts_no_change_but_a_redaction_inside_an_erase(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str, statement: str
) -> None:
    await identify(
        client, project, {"identifiers": {"email": EMAIL}, "profile": {"first_name": FIRST}}
    )
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with connection.transaction():
                await connection.execute(statement)
        async with connection.transaction():
            await connection.execute("SET LOCAL cdp.redacting = 'on'")
            redacted = await connection.execute(
                "UPDATE profile_changelog SET new_value = '\"[erased]\"' "
                "WHERE new_value IS NOT NULL"
            )
            assert redacted != "UPDATE 0"
    finally:
        await connection.close()


async def test_identify_racing_an_erase_never_leaves_an_identifier_on_the_erased(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    created = await identify(
        client, project, {"identifiers": {"email": EMAIL, "phone": PHONE}, "profile": {"area": "A"}}
    )
    customer_id = created.json()["customer"]["id"]

    async def touch(n: int) -> int:
        response = await identify(
            client,
            project,
            {"identifiers": {"email": EMAIL}, "profile": {"area": f"area-{n}"}},
        )
        return response.status_code

    async def erase() -> int:
        response = await client.delete(
            f"/v1/customers/{customer_id}", headers=project.admin_headers
        )
        return response.status_code

    results = await asyncio.gather(
        *(touch(n) for n in range(10)), erase(), *(touch(n) for n in range(10))
    )
    assert results[10] == 200
    assert set(results[:10] + results[11:]) <= {200, 201}
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        owners = await connection.fetch(
            "SELECT c.status FROM customer_identifiers i JOIN customers c ON c.id = i.customer_id"
        )
    finally:
        await connection.close()
    assert {row["status"] for row in owners} <= {"active"}
    # The email is free or belongs to a new customer: identify always finds a live one.
    after = await identify(client, project, {"identifiers": {"email": EMAIL}})
    assert after.status_code in (200, 201)
    assert after.json()["customer"]["id"] != customer_id
