"""Merging customers: explicit merges, merge on identify, tombstones that keep working."""

import asyncio
import random
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, bearer, identify, make_key

TABLES = (
    "customers",
    "customer_identifiers",
    "identifier_history",
    "profile_changelog",
    "customer_merges",
    "idempotency_keys",
)


async def _customer(client: httpx.AsyncClient, owner: ProjectWithKey, **body: Any) -> str:
    response = await identify(client, owner, body)
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


async def _merge(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    target: str,
    sources: list[str],
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/customers/merge",
        headers=owner.admin_headers | (headers or {}),
        params=params,
        json={"target_id": target, "source_ids": sources},
    )


async def _row_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return {t: await connection.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await connection.close()


async def _items(client: httpx.AsyncClient, owner: ProjectWithKey, path: str) -> list[Any]:
    response = await client.get(path, headers=owner.admin_headers, params={"limit": 1000})
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


@pytest.fixture
async def trio(client: httpx.AsyncClient, project: ProjectWithKey) -> tuple[str, str, str]:
    """A (email, card), B (email, phone, card, last name), C (phone, card, last name; the
    most recently updated source)."""
    a = await _customer(
        client, project, identifiers={"email": "a@example.com", "discount_cards": ["A1"]}
    )
    b = await _customer(
        client,
        project,
        identifiers={"email": "b@example.com", "phone": "+14155550001", "discount_cards": ["B1"]},
        profile={"last_name": "Bee", "area": "North"},
    )
    c = await _customer(
        client,
        project,
        identifiers={"phone": "+14155550002", "discount_cards": ["C1"]},
        profile={"last_name": "Cee"},
    )
    return a, b, c


class TestExplicitMerge:
    async def test_three_customers_become_one_owning_the_union(
        self, client: httpx.AsyncClient, project: ProjectWithKey, trio: tuple[str, str, str]
    ) -> None:
        a, b, c = trio
        response = await _merge(client, project, a, [b, c])
        assert response.status_code == 200, response.text
        body = response.json()
        survivor = body["survivor"]
        assert survivor["id"] == a
        assert survivor["identifiers"]["email"] == "a@example.com"
        # C was updated last, so its phone and last name win; B's clash.
        assert survivor["identifiers"]["phone"] == "+14155550002"
        assert sorted(survivor["identifiers"]["discount_cards"]) == ["A1", "B1", "C1"]
        assert survivor["profile"]["last_name"] == "Cee"
        assert survivor["profile"]["area"] == "North"
        assert sorted(survivor["merged_ids"]) == sorted([b, c])
        assert {(i["kind"], i["value"], i["kept"]) for i in body["identifiers_clashed"]} == {
            ("email", "b@example.com", "a@example.com"),
            ("phone", "+14155550001", "+14155550002"),
        }
        assert body["counts"]["identifiers"] == {"moved": 3, "clashed": 2}

        history = await _items(client, project, f"/v1/customers/{a}/identifiers/history")
        clashes = {
            (h["value"], h["other_customer_id"]) for h in history if h["event"] == "merged_clash"
        }
        assert clashes == {("b@example.com", b), ("+14155550001", b)}
        changelog = await _items(client, project, f"/v1/customers/{a}/changelog")
        assert {row["customer_id"] for row in changelog} == {a, b, c}
        operations = {(row["customer_id"], row["operation"]) for row in changelog}
        assert {(a, "merge"), (b, "merge"), (c, "merge"), (a, "merge_fill")} <= operations

    async def test_merged_ids_keep_working_everywhere(
        self, client: httpx.AsyncClient, project: ProjectWithKey, trio: tuple[str, str, str]
    ) -> None:
        a, b, c = trio
        await _merge(client, project, a, [b, c])
        read = await client.get(f"/v1/customers/{b}", headers=project.admin_headers)
        assert read.json()["id"] == a
        lookup = await client.get(
            "/v1/customers/lookup", headers=project.admin_headers, params={"discount_card": "B1"}
        )
        assert lookup.json()["id"] == a
        by_id = await identify(client, project, {"identifiers": {"customer_id": c}})
        assert by_id.json()["customer"]["id"] == a
        patched = await client.patch(
            f"/v1/customers/{b}", headers=project.admin_headers, json={"profile": {"area": "South"}}
        )
        assert (patched.json()["id"], patched.json()["profile"]["area"]) == (a, "South")

    async def test_chains_resolve_and_the_tree_shows_them(
        self, client: httpx.AsyncClient, project: ProjectWithKey, trio: tuple[str, str, str]
    ) -> None:
        a, b, c = trio
        d = await _customer(client, project, identifiers={"email": "d@example.com"})
        await _merge(client, project, a, [b])
        await _merge(client, project, d, [a])
        await _merge(client, project, d, [c])
        read = await client.get(f"/v1/customers/{b}", headers=project.admin_headers)
        assert read.json()["id"] == d
        assert sorted(read.json()["merged_ids"]) == sorted([a, b, c])
        tree = (await client.get(f"/v1/customers/{b}/merges", headers=project.admin_headers)).json()
        assert tree["id"] == d
        children = {node["id"]: node for node in tree["merged"]}
        assert set(children) == {a, c}
        assert [node["id"] for node in children[a]["merged"]] == [b]
        assert children[a]["initiator"] == "admin"

    async def test_dry_run_previews_exactly_and_writes_nothing(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        trio: tuple[str, str, str],
        database_url: str,
    ) -> None:
        a, b, c = trio
        before = await _row_counts(database_url)
        preview = await _merge(client, project, a, [b, c], params={"dry_run": "true"})
        assert preview.status_code == 200
        assert await _row_counts(database_url) == before
        real = await _merge(client, project, a, [b, c])
        strip = ("dry_run", "survivor")
        assert {k: v for k, v in preview.json().items() if k not in strip} == {
            k: v for k, v in real.json().items() if k not in strip
        }
        assert preview.json()["survivor"]["identifiers"] == real.json()["survivor"]["identifiers"]


class TestRefusals:
    @pytest.mark.parametrize("case", ["self", "target merged", "source merged", "unknown"])
    async def test_refused_and_nothing_changes(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        trio: tuple[str, str, str],
        database_url: str,
        case: str,
    ) -> None:
        a, b, c = trio
        await _merge(client, project, a, [b])
        before = await _row_counts(database_url)
        target, sources, status = {
            "self": (c, [c], 422),
            "target merged": (b, [c], 409),
            "source merged": (c, [b], 409),
            "unknown": (c, ["01a22741-9713-75ce-bc96-01a8de0d14c8"], 404),
        }[case]
        response = await _merge(client, project, target, sources)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert await _row_counts(database_url) == before

    async def test_another_projects_customer_is_404(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        other_project: ProjectWithKey,
        trio: tuple[str, str, str],
        database_url: str,
    ) -> None:
        a, _, _ = trio
        theirs = await _customer(client, other_project, identifiers={"email": "z@example.com"})
        before = await _row_counts(database_url)
        assert (await _merge(client, project, a, [theirs])).status_code == 404
        assert (await _merge(client, other_project, theirs, [a])).status_code == 404
        assert await _row_counts(database_url) == before

    async def test_needs_the_merge_scope(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        trio: tuple[str, str, str],
        uow: UnitOfWork,
    ) -> None:
        a, b, _ = trio
        writer = await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_WRITE])
        response = await client.post(
            "/v1/customers/merge", headers=bearer(writer), json={"target_id": a, "source_ids": [b]}
        )
        assert response.status_code == 403


class TestIdempotency:
    async def test_replay_returns_the_same_answer_and_merges_once(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        trio: tuple[str, str, str],
        database_url: str,
    ) -> None:
        a, b, c = trio
        key = {"Idempotency-Key": "merge-1"}
        first = await _merge(client, project, a, [b], headers=key)
        counts = await _row_counts(database_url)
        replay = await _merge(client, project, a, [b], headers=key)
        assert replay.status_code == first.status_code == 200
        assert replay.json() == first.json()
        assert await _row_counts(database_url) == counts
        other_body = await _merge(client, project, a, [c], headers=key)
        assert other_body.status_code == 409

    async def test_concurrent_replays_merge_once(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        trio: tuple[str, str, str],
        database_url: str,
    ) -> None:
        a, b, c = trio
        key = {"Idempotency-Key": "merge-together"}
        responses = await asyncio.gather(
            *(_merge(client, project, a, [b, c], headers=key) for _ in range(8))
        )
        assert {r.status_code for r in responses} == {200}
        assert len({r.text for r in responses}) == 1
        counts = await _row_counts(database_url)
        assert counts["customer_merges"] == 2


class TestMergeOnIdentify:
    async def test_identify_merges_into_the_highest_priority_match(
        self, client: httpx.AsyncClient, project: ProjectWithKey, trio: tuple[str, str, str]
    ) -> None:
        a, b, _ = trio
        # The card (A1) outranks the email (b@...): A survives.
        response = await identify(
            client,
            project,
            {
                "identifiers": {"email": "b@example.com", "discount_cards": ["A1"]},
                "profile": {"first_name": "Ann"},
                "on_conflict": "merge",
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["result"], body["merged_ids"]) == ("merged", [b])
        customer = body["customer"]
        assert customer["id"] == a
        # The request names b@... as the email: it replaces the survivor's own.
        assert customer["identifiers"]["email"] == "b@example.com"
        assert customer["profile"]["first_name"] == "Ann"
        assert b in customer["merged_ids"]

    async def test_project_priority_changes_the_survivor(
        self, client: httpx.AsyncClient, project: ProjectWithKey, trio: tuple[str, str, str]
    ) -> None:
        _, b, _ = trio
        settings = await client.patch(
            "/v1/projects/current",
            headers=project.admin_headers,
            json={"identifier_priority": ["email", "discount_card"]},
        )
        assert settings.status_code == 200
        response = await identify(
            client,
            project,
            {
                "identifiers": {"email": "b@example.com", "discount_cards": ["A1"]},
                "on_conflict": "merge",
            },
        )
        assert response.json()["customer"]["id"] == b

    async def test_identify_dry_run_writes_nothing(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        trio: tuple[str, str, str],
        database_url: str,
    ) -> None:
        before = await _row_counts(database_url)
        response = await client.post(
            "/v1/customers/identify",
            headers=project.admin_headers,
            params={"dry_run": "true"},
            json={
                "identifiers": {"email": "b@example.com", "discount_cards": ["A1"]},
                "on_conflict": "merge",
            },
        )
        assert response.status_code == 200
        assert (response.json()["dry_run"], response.json()["result"]) == (True, "merged")
        assert await _row_counts(database_url) == before


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_parallel_merges_and_identifies_stay_consistent(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str, seed: int
) -> None:
    ids = [
        await _customer(
            client,
            project,
            identifiers={"email": f"p{n}@example.com", "discount_cards": [f"P{n}"]},
        )
        for n in range(6)
    ]
    rng = random.Random(seed)
    calls = []
    for _ in range(50):
        x, y = rng.sample(range(6), 2)
        if rng.random() < 0.5:
            calls.append(_merge(client, project, ids[x], [ids[y]]))
        else:
            body = {
                "identifiers": {"email": f"p{x}@example.com", "discount_cards": [f"P{y}"]},
                "on_conflict": "merge",
            }
            calls.append(identify(client, project, body))
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} <= {200, 409}, [
        r.text for r in responses if r.status_code not in (200, 409)
    ]
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        owned_by_tombstones = await connection.fetchval(
            "SELECT count(*) FROM customer_identifiers i JOIN customers c ON c.id = i.customer_id "
            "WHERE c.status <> 'active'"
        )
        # Every tombstone's chain ends, within a few hops, at an active customer (no cycles).
        dangling = await connection.fetchval(
            """
            WITH RECURSIVE chain(start, current, depth) AS (
                SELECT id, merged_into, 1 FROM customers WHERE status = 'merged'
                UNION ALL
                SELECT chain.start, c.merged_into, chain.depth + 1
                FROM chain JOIN customers c ON c.id = chain.current
                WHERE c.status = 'merged' AND chain.depth < 20
            )
            SELECT count(*) FROM customers t WHERE t.status = 'merged' AND NOT EXISTS (
                SELECT 1 FROM chain JOIN customers last ON last.id = chain.current
                WHERE chain.start = t.id AND last.status = 'active'
            )
            """
        )
        identifiers = await connection.fetchval("SELECT count(*) FROM customer_identifiers")
        active = await connection.fetchval("SELECT count(*) FROM customers WHERE status = 'active'")
    finally:
        await connection.close()
    assert (owned_by_tombstones, dangling) == (0, 0)
    # Each email and card survives exactly once (a clash releases an email to history).
    assert 6 + active <= identifiers <= 12
    assert active >= 1
