"""The customer feed: newest first, keyset pages that stay stable while actions arrive,
filters, system actions from the profile changelog, and merges."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.activity.support import customer, declare, feed, moments_ago, order, record
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey

Key = tuple[datetime, uuid.UUID]


def _key(item: dict[str, Any]) -> Key:
    return datetime.fromisoformat(item["occurred_at"]), uuid.UUID(item["id"])


async def _all_pages(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str, **params: Any
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await feed(client, owner, customer_id, **query)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
        await asyncio.sleep(0)  # let the concurrent writer in between pages


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectWithKey) -> str:
    await declare(client, project)
    await declare(client, project, "page.viewed", {"type": "object"})
    return await customer(client, project, "jane@example.com")


async def test_pages_stay_stable_while_actions_arrive(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str
) -> None:
    base = datetime.now(UTC) - timedelta(days=10)
    for i in range(30):
        # Pairs share an instant: the id breaks the tie.
        at = (base + timedelta(minutes=i // 2)).isoformat()
        body = order(
            {"customer_id": jane}, occurred_at=at, payload={"order_id": f"o{i}", "total": i}
        )
        assert (await record(client, project, body)).status_code == 201
    before = (await feed(client, project, jane, limit=1000)).json()["items"]

    async def write_more() -> None:
        for i in range(20):
            older, newer = base - timedelta(minutes=i + 1), datetime.now(UTC) - timedelta(seconds=i)
            middle = base + timedelta(minutes=7, seconds=i)
            at = (older, newer, middle)[i % 3]
            body = order({"customer_id": jane}, occurred_at=at.isoformat())
            assert (await record(client, project, body)).status_code == 201

    pages, _ = await asyncio.gather(_all_pages(client, project, jane, limit=7), write_more())

    seen = [item["id"] for page in pages for item in page]
    assert len(seen) == len(set(seen)), "an item appeared on two pages"
    assert all(len(page) <= 7 for page in pages)
    keys = [_key(item) for page in pages for item in page]
    assert keys == sorted(keys, reverse=True)
    first = _key(pages[0][0])
    expected = [item["id"] for item in before if _key(item) <= first]
    assert [i for i in seen if i in set(expected)] == expected
    assert len(before) == 30 + 1  # and the identify's system.identifier_added


async def test_filters_by_type_and_time(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str
) -> None:
    now = datetime.now(UTC)
    times = [now - timedelta(days=d) for d in (5, 4, 3, 2, 1)]
    for i, at in enumerate(times):
        kind = "order.placed" if i % 2 == 0 else "page.viewed"
        payload = {"order_id": str(i), "total": i} if kind == "order.placed" else {"url": "/"}
        body = order({"customer_id": jane}, type=kind, occurred_at=at.isoformat(), payload=payload)
        assert (await record(client, project, body)).status_code == 201

    orders = (await feed(client, project, jane, type="order.placed")).json()["items"]
    assert [i["payload"]["order_id"] for i in orders] == ["4", "2", "0"]
    both = (await feed(client, project, jane, type=["order.placed", "page.viewed"])).json()
    assert len(both["items"]) == 5
    window = await feed(
        client, project, jane, since=times[1].isoformat(), until=times[3].isoformat()
    )
    assert [i["occurred_at"] for i in window.json()["items"]] == [
        times[2].isoformat().replace("+00:00", "Z"),
        times[1].isoformat().replace("+00:00", "Z"),
    ]
    naive = await feed(client, project, jane, since="2026-01-01T00:00:00")
    assert naive.status_code == 422
    bad_cursor = await feed(client, project, jane, cursor="bm90IGEgY3Vyc29y")
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["pointer"] == "/cursor"


async def test_profile_changes_appear_as_system_actions(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str
) -> None:
    await record(client, project, order({"customer_id": jane}, occurred_at=moments_ago(days=1)))
    patched = await client.patch(
        f"/v1/customers/{jane}",
        headers=project.admin_headers,
        json={"profile": {"first_name": "Jane"}},
    )
    assert patched.status_code == 200, patched.text

    items = (await feed(client, project, jane)).json()["items"]
    assert [(i["type"], i["system"]) for i in items] == [
        ("system.update", True),
        ("system.identifier_added", True),
        ("order.placed", False),
    ]
    update = items[0]
    assert update["payload"] == {"field": "first_name", "old_value": None, "new_value": "Jane"}
    assert update["customer_id"] == update["origin_customer_id"] == jane
    assert (update["touchpoint"], update["initiator"], update["external_id"]) == (
        "admin",
        "admin",
        None,
    )

    only_updates = (await feed(client, project, jane, type="system.update")).json()["items"]
    assert [i["type"] for i in only_updates] == ["system.update"]
    without = (await feed(client, project, jane, include_system="false")).json()["items"]
    assert [i["type"] for i in without] == ["order.placed"]


async def _merge(
    client: httpx.AsyncClient, owner: ProjectWithKey, target: str, sources: list[str]
) -> httpx.Response:
    return await client.post(
        "/v1/customers/merge",
        headers=owner.admin_headers,
        json={"target_id": target, "source_ids": sources},
    )


async def test_a_merge_moves_actions_and_keeps_their_origin(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str
) -> None:
    john = await customer(client, project, "john@example.com")
    for who, days in ((jane, 3), (john, 2), (john, 1)):
        body = order({"customer_id": who}, occurred_at=moments_ago(days=days))
        assert (await record(client, project, body)).status_code == 201

    merged = await _merge(client, project, jane, [john])
    assert merged.status_code == 200, merged.text
    assert merged.json()["counts"]["activity"] == {"actions_moved": 2}

    items = (await feed(client, project, jane, type="order.placed")).json()["items"]
    assert [(i["customer_id"], i["origin_customer_id"]) for i in items] == [
        (jane, john),
        (jane, john),
        (jane, jane),
    ]
    via_tombstone = (await feed(client, project, john, type="order.placed")).json()["items"]
    assert via_tombstone == items
    system = (await feed(client, project, jane, type="system.merge")).json()["items"]
    assert {i["origin_customer_id"] for i in system} == {jane, john}
    later = await record(client, project, order({"customer_id": john}))
    assert (later.json()["customer_id"], later.json()["origin_customer_id"]) == (jane, jane)


async def test_actions_sent_during_a_merge_end_on_the_survivor(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    john = await customer(client, project, "john@example.com")
    sends = [record(client, project, order({"customer_id": john})) for _ in range(10)]
    responses = await asyncio.gather(*sends[:5], _merge(client, project, jane, [john]), *sends[5:])
    assert [r.status_code for r in responses] == [201] * 5 + [200] + [201] * 5
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        owners = await connection.fetch("SELECT customer_id, count(*) FROM actions GROUP BY 1")
    finally:
        await connection.close()
    assert [(str(row[0]), row[1]) for row in owners] == [(jane, 10)]


async def test_an_action_held_up_by_a_merge_is_retried_onto_the_survivor(
    client: httpx.AsyncClient, project: ProjectWithKey, jane: str, database_url: str
) -> None:
    """The merge's critical moment, held open by hand: the actions have resolved John and
    wait for his row while he becomes a tombstone; they must end on Jane, not on him."""
    john = await customer(client, project, "john@example.com")
    merger = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        transaction = merger.transaction()
        await transaction.start()
        await merger.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", uuid.UUID(john))
        sends = [
            asyncio.create_task(record(client, project, order({"customer_id": john})))
            for _ in range(3)
        ]
        await _until_waiting_for_locks(database_url, 3)
        await merger.execute(
            "UPDATE customers SET status = 'merged', merged_into = $1 WHERE id = $2",
            uuid.UUID(jane),
            uuid.UUID(john),
        )
        await transaction.commit()
        responses = await asyncio.gather(*sends)
    finally:
        await merger.close()
    assert [r.status_code for r in responses] == [201] * 3
    assert {(r.json()["customer_id"], r.json()["origin_customer_id"]) for r in responses} == {
        (jane, jane)
    }


async def _until_waiting_for_locks(database_url: str, count: int) -> None:
    # Its own connection: inside a transaction, pg_stat_activity stays as first read.
    watcher = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        for _ in range(500):
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting >= count:
                return
            await asyncio.sleep(0.01)
    finally:
        await watcher.close()
    raise AssertionError("the actions never waited for the customer's row")
