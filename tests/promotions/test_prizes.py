"""Prizes against PostgreSQL: give, claim, list, replays, merges and tenancy."""

from typing import Any

import httpx
import pytest

from tests.factories import ProjectWithKey
from tests.promotions.helpers import changelog, customer, row_counts

PRIZE = {"campaign": "summer-wheel", "prize": "Free coffee", "details": {"size": "large"}}


async def _give(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    customer_id: str,
    body: dict[str, Any] = PRIZE,
    key: str | None = None,
) -> httpx.Response:
    headers = {**owner.admin_headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"/v1/customers/{customer_id}/prizes", headers=headers, json=body)


async def _claim(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str, prize_id: str
) -> httpx.Response:
    return await client.post(
        f"/v1/customers/{customer_id}/prizes/{prize_id}/claim", headers=owner.admin_headers
    )


async def test_give_claim_and_list(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    ann = await customer(client, project, "ann@example.com")
    given = await _give(client, project, ann)
    assert given.status_code == 201, given.text
    prize = given.json()
    assert (prize["status"], prize["claimed_at"], prize["details"]) == (
        "issued",
        None,
        {"size": "large"},
    )
    second = (await _give(client, project, ann, {"campaign": "quiz", "prize": "Mug"})).json()
    claimed = await _claim(client, project, ann, prize["id"])
    assert claimed.status_code == 200
    assert claimed.json()["status"] == "claimed"
    before = await row_counts(database_url)
    again = await _claim(client, project, ann, prize["id"])
    assert again.status_code == 409
    assert await row_counts(database_url) == before
    listed = await client.get(f"/v1/customers/{ann}/prizes", headers=project.admin_headers)
    assert [(p["prize"], p["status"]) for p in listed.json()["items"]] == [
        ("Mug", "issued"),
        ("Free coffee", "claimed"),
    ]
    only = await client.get(
        f"/v1/customers/{ann}/prizes", params={"status": "issued"}, headers=project.admin_headers
    )
    assert [p["id"] for p in only.json()["items"]] == [second["id"]]
    operations = [c["operation"] for c in await changelog(client, project, ann)]
    assert operations[:3] == ["prize_claimed", "prize_issued", "prize_issued"]


async def test_idempotent_give(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    ann = await customer(client, project, "ann@example.com")
    first = await _give(client, project, ann, key="win-1")
    before = await row_counts(database_url)
    replay = await _give(client, project, ann, key="win-1")
    assert (replay.status_code, replay.content) == (201, first.content)
    other = await _give(client, project, ann, {"campaign": "x", "prize": "y"}, key="win-1")
    assert other.status_code == 409
    assert await row_counts(database_url) == before


async def test_someone_elses_prize_is_404_and_changes_nothing(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    ann = await customer(client, project, "ann@example.com")
    bob = await customer(client, project, "bob@example.com")
    prize = (await _give(client, project, ann)).json()
    before = await row_counts(database_url)
    assert (await _claim(client, project, bob, prize["id"])).status_code == 404
    assert await row_counts(database_url) == before


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"campaign": "", "prize": "x"}, "/campaign"),
        ({"campaign": "c" * 101, "prize": "x"}, "/campaign"),
        ({"campaign": "c", "prize": "p" * 201}, "/prize"),
        ({"campaign": "c", "prize": "p", "details": {"blob": "x" * 16_384}}, "/details"),
        ({"campaign": "c", "prize": "p", "details": [1]}, "/details"),
        ({"campaign": "c", "prize": "p", "details": {"n": 2**64}}, "/details"),
        ({"campaign": "c", "prize": "p", "status": "claimed"}, "/status"),
    ],
)
async def test_invalid_prizes_are_refused(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    database_url: str,
    body: dict[str, Any],
    pointer: str,
) -> None:
    ann = await customer(client, project, "ann@example.com")
    before = await row_counts(database_url)
    response = await _give(client, project, ann, body)
    assert response.status_code == 422
    assert pointer in {e["pointer"] for e in response.json()["errors"]}
    assert await row_counts(database_url) == before


async def test_merge_moves_prizes(client: httpx.AsyncClient, project: ProjectWithKey) -> None:
    ann = await customer(client, project, "ann@example.com")
    bob = await customer(client, project, "bob@example.com")
    await _give(client, project, ann)
    bobs = (await _give(client, project, bob, {"campaign": "quiz", "prize": "Mug"})).json()
    merged = await client.post(
        "/v1/customers/merge",
        headers=project.admin_headers,
        json={"target_id": ann, "source_ids": [bob]},
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["counts"]["promotions"] == {"promo_codes_moved": 0, "prizes_moved": 1}
    listed = await client.get(f"/v1/customers/{ann}/prizes", headers=project.admin_headers)
    [moved] = [p for p in listed.json()["items"] if p["id"] == bobs["id"]]
    assert (moved["customer_id"], moved["origin_customer_id"]) == (ann, bob)
    # Claimed through the old id, which answers for the survivor.
    assert (await _claim(client, project, bob, bobs["id"])).status_code == 200


async def test_tenancy(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    other_project: ProjectWithKey,
    database_url: str,
) -> None:
    ann = await customer(client, project, "ann@example.com")
    prize = (await _give(client, project, ann)).json()
    before = await row_counts(database_url)
    assert (await _give(client, other_project, ann)).status_code == 404
    assert (await _claim(client, other_project, ann, prize["id"])).status_code == 404
    listed = await client.get(f"/v1/customers/{ann}/prizes", headers=other_project.admin_headers)
    assert listed.status_code == 404
    assert await row_counts(database_url) == before
