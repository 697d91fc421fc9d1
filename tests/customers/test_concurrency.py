"""Real concurrent identify calls: no duplicates, no deadlocks, no 500s."""

import asyncio
import random
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import _asyncpg_dsn, fetch_rows
from tests.factories import ProjectWithKey, identify
from tests.promotions.helpers import pool, upload

GROUPS = 100


async def _counts(database_url: str) -> tuple[int, int, list[int]]:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        customers = await connection.fetchval("SELECT count(*) FROM customers")
        identifiers = await connection.fetchval("SELECT count(*) FROM customer_identifiers")
        per_customer = await connection.fetch(
            "SELECT count(*) AS n FROM customer_identifiers GROUP BY customer_id"
        )
    finally:
        await connection.close()
    return customers, identifiers, sorted({row["n"] for row in per_customer})


async def test_overlapping_pairs_make_exactly_one_customer_each(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    # Two calls per group share the email; each brings one more identifier of its own.
    bodies: list[dict[str, Any]] = []
    for group in range(GROUPS):
        email = f"person{group}@example.com"
        bodies.append({"identifiers": {"email": email, "discount_cards": [f"CARD-{group}"]}})
        bodies.append({"identifiers": {"email": email, "phone": f"+1415555{group:04d}"}})
    random.Random(7).shuffle(bodies)

    responses = await asyncio.gather(*(identify(client, project, body) for body in bodies))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 201}, [r.text for r in responses if r.status_code >= 300][:3]
    assert statuses.count(201) == GROUPS
    customers, identifiers, sizes = await _counts(database_url)
    assert (customers, identifiers, sizes) == (GROUPS, 3 * GROUPS, [3])


async def test_racing_single_valued_values_end_with_one_and_the_other_in_history(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    bodies = [
        {"identifiers": {"email": "race@example.com", "phone": f"+1415555{n:04d}"}}
        for n in range(20)
    ]
    responses = await asyncio.gather(*(identify(client, project, body) for body in bodies))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    ids = {r.json()["customer"]["id"] for r in responses}
    assert len(ids) == 1
    customers, identifiers, _ = await _counts(database_url)
    assert (customers, identifiers) == (1, 2)
    history = await client.get(
        f"/v1/customers/{ids.pop()}/identifiers/history",
        headers=project.admin_headers,
        params={"limit": 100},
    )
    replaced = [e for e in history.json()["items"] if e["event"] == "replaced"]
    assert len(replaced) == 19


async def test_concurrent_reassigns_between_two_customers_do_not_deadlock(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    await identify(
        client, project, {"identifiers": {"email": "x@example.com", "discount_cards": ["X"]}}
    )
    await identify(
        client, project, {"identifiers": {"email": "y@example.com", "discount_cards": ["Y"]}}
    )
    bodies = [
        {
            "identifiers": {"discount_cards": ["X"], "email": "y@example.com"},
            "on_conflict": "reassign",
        },
        {
            "identifiers": {"discount_cards": ["Y"], "email": "x@example.com"},
            "on_conflict": "reassign",
        },
    ] * 10
    responses = await asyncio.gather(*(identify(client, project, body) for body in bodies))
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    customers, identifiers, _ = await _counts(database_url)
    assert (customers, identifiers) == (2, 4)


# Writes to one customer, each sent with a number that makes it its own request.
WRITES: dict[str, tuple[str, str, Callable[[int], dict[str, Any]]]] = {
    "patch": ("PATCH", "", lambda n: {"identifiers": {"discount_cards": [f"RACE-{n}"]}}),
    "points": (
        "POST",
        "/points/transactions",
        lambda n: {"account": "bonus", "type": "accrual", "amount": 1},
    ),
    "consent": (
        "PUT",
        "/subscriptions",
        lambda n: {"subscriptions": [{"channel": "email", "status": "subscribed"}]},
    ),
    "device": (
        "PUT",
        "/devices/install-{n}",
        lambda n: {"kind": "mobile_app", "app_id": "a", "platform": "ios"},
    ),
    "auth_token": ("POST", "/auth-token", lambda n: {}),
    "prize": ("POST", "/prizes", lambda n: {"campaign": "race", "prize": f"mug-{n}"}),
    "promo_code": ("POST", "/promo-codes", lambda n: {"pool": "race"}),
}


async def _write(
    client: httpx.AsyncClient, project: ProjectWithKey, customer_id: str, kind: str, n: int
) -> httpx.Response:
    method, path, body = WRITES[kind]
    url = f"/v1/customers/{customer_id}{path.format(n=n)}"
    headers = {**project.admin_headers, "Idempotency-Key": f"race-{n}"}
    return await client.request(method, url, json=body(n), headers=headers)


async def _held_by_the_inactive(database_url: str) -> list[str]:
    """What tombstones (merged or erased customers) still hold: nothing, always."""
    rows = await fetch_rows(
        database_url,
        "SELECT 'identifier ' || i.value AS what FROM customer_identifiers i "
        "JOIN customers c ON c.id = i.customer_id WHERE c.status <> 'active' "
        "UNION ALL SELECT 'balance ' || b.available FROM point_balances b "
        "JOIN customers c ON c.id = b.customer_id WHERE c.status = 'merged' "
        "UNION ALL SELECT 'subscription ' || s.channel FROM subscriptions s "
        "JOIN customers c ON c.id = s.customer_id WHERE c.status = 'merged'",
    )
    return [row["what"] for row in rows]


@pytest.mark.parametrize("kind", sorted(WRITES))
@pytest.mark.parametrize("race", ["merge", "erase"])
async def test_writes_racing_a_merge_or_an_erase_act_as_before_or_after_it(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    database_url: str,
    kind: str,
    race: str,
) -> None:
    """A write that resolved the customer just before a merge or an erase of it committed
    must not land on the tombstone, nor be refused with a 409 that no order of the two
    explains: it happened before (and was moved or erased with the rest) or after (it
    went to the survivor, or is a 404)."""
    account = {"code": "bonus", "name": "Bonus", "precision": 0}
    await client.post("/v1/point-accounts", headers=project.admin_headers, json=account)
    await pool(client, project, "race")
    await upload(client, project, "race", [f"RACE-CODE-{n}" for n in range(16)])
    survivor, source = [
        (await identify(client, project, {"identifiers": {"email": email}})).json()["customer"][
            "id"
        ]
        for email in ("keep@example.com", "race@example.com")
    ]
    if race == "merge":
        body = {"target_id": survivor, "source_ids": [source]}
        racer = client.post("/v1/customers/merge", headers=project.admin_headers, json=body)
    else:
        racer = client.delete(f"/v1/customers/{source}", headers=project.admin_headers)

    writes = [_write(client, project, source, kind, n) for n in range(16)]
    raced, *responses = await asyncio.gather(racer, *writes)

    assert raced.status_code == 200, raced.text
    allowed = {200, 201} if race == "merge" else {200, 201, 404}
    assert {r.status_code for r in responses} <= allowed, [
        r.text for r in responses if r.status_code not in allowed
    ]
    assert await _held_by_the_inactive(database_url) == []


@pytest.mark.parametrize("erased", ["source", "target"])
async def test_an_erase_racing_a_merge_of_its_customer_erases_before_or_after_it(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str, erased: str
) -> None:
    """Merge first: the erase takes the survivor and everyone merged into it. Erase first:
    the merge finds a customer erased (409), and the erase took only the one it named."""
    headers = project.admin_headers
    pairs = [
        [
            (await identify(client, project, {"identifiers": {"email": email}})).json()["customer"][
                "id"
            ]
            for email in (f"keep{n}@example.com", f"gone{n}@example.com")
        ]
        for n in range(8)
    ]
    merges = [
        client.post(
            "/v1/customers/merge", headers=headers, json={"target_id": a, "source_ids": [b]}
        )
        for a, b in pairs
    ]
    named = [b if erased == "source" else a for a, b in pairs]
    erases = [client.delete(f"/v1/customers/{c}", headers=headers) for c in named]
    responses = await asyncio.gather(*merges, *erases)

    for pair, name, merge, erase in zip(
        pairs, named, responses[: len(pairs)], responses[len(pairs) :], strict=True
    ):
        assert erase.status_code == 200, erase.text
        if merge.status_code == 200:
            assert sorted(erase.json()["erased_ids"]) == sorted(pair)
        else:
            assert merge.status_code == 409, merge.text
            assert erase.json()["erased_ids"] == [name]
    assert await _held_by_the_inactive(database_url) == []
