"""Imports apply identify's rules: conflicts per policy, replacements, duplicates in the file,
and a file imported gives the same customers as its rows sent to identify one by one."""

import random
from typing import Any

import httpx
import pytest

from app.core.db import UnitOfWork
from app.imports import runner
from tests.factories import ProjectWithKey, identify
from tests.imports.helpers import imported, report


async def _lookup(
    client: httpx.AsyncClient, owner: ProjectWithKey, **params: str
) -> dict[str, Any]:
    response = await client.get("/v1/customers/lookup", params=params, headers=owner.admin_headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _two_customers(client: httpx.AsyncClient, owner: ProjectWithKey) -> tuple[str, str]:
    a = await identify(client, owner, {"identifiers": {"email": "a@example.com"}})
    b = await identify(client, owner, {"identifiers": {"phone": "+4915112345678"}})
    return a.json()["customer"]["id"], b.json()["customer"]["id"]


CONFLICT_FILE = "email,phone,last_name\na@example.com,+4915112345678,Both\n"


async def test_reject_refuses_a_row_matching_two_customers(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    a_id, b_id = await _two_customers(client, project)
    result = await imported(client, project, uow, CONFLICT_FILE)
    assert result["counts"]["failed"] == 1
    lines = await report(client, project, result["id"])
    assert lines[0]["message"].startswith("The identifiers point at different customers")
    assert {line["column"] for line in lines} == {"", "email", "phone"}
    assert (await _lookup(client, project, email="a@example.com"))["id"] == a_id
    assert (await _lookup(client, project, phone="+4915112345678"))["id"] == b_id


async def test_merge_merges_as_identify_does(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    a_id, b_id = await _two_customers(client, project)
    result = await imported(client, project, uow, CONFLICT_FILE, on_conflict="merge")
    assert result["counts"]["merged"] == 1
    survivor = await _lookup(client, project, email="a@example.com")
    # Phone outranks email in the default priority: the phone's customer survives.
    assert survivor["id"] == b_id
    assert survivor["merged_ids"] == [a_id]
    assert survivor["profile"]["last_name"] == "Both"


async def test_reassign_moves_the_identifier(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    a_id, b_id = await _two_customers(client, project)
    await identify(
        client, project, {"identifiers": {"email": "a@example.com", "discount_cards": ["K"]}}
    )
    result = await imported(client, project, uow, CONFLICT_FILE, on_conflict="reassign")
    assert result["counts"]["updated"] == 1
    assert (await _lookup(client, project, email="a@example.com"))["id"] == b_id
    assert (await _lookup(client, project, discount_card="K"))["id"] == a_id


async def test_a_new_phone_replaces_the_old_one_with_history(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    created = await identify(
        client, project, {"identifiers": {"email": "r@example.com", "phone": "+4915100000001"}}
    )
    customer_id = created.json()["customer"]["id"]
    result = await imported(client, project, uow, "email,phone\nr@example.com,+4915100000002\n")
    assert result["counts"]["updated"] == 1
    history = await client.get(
        f"/v1/customers/{customer_id}/identifiers/history", headers=project.admin_headers
    )
    events = {(h["event"], h["value"]) for h in history.json()["items"]}
    assert ("replaced", "+4915100000001") in events
    assert ("added", "+4915100000002") in events


@pytest.mark.parametrize("batch_rows", [1000, 2])
async def test_a_repeated_identifier_is_applied_in_file_order_and_reported(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    monkeypatch: pytest.MonkeyPatch,
    batch_rows: int,
) -> None:
    monkeypatch.setattr(runner, "BATCH_ROWS", batch_rows)
    content = (
        "email,first_name,discount_cards\n"
        "d@example.com,First,D-1\n"
        "x@example.com,Other,\n"
        "d@example.com,Second,D-2\n"
        "y@example.com,Third,D-1\n"
    )
    result = await imported(client, project, uow, content)
    assert result["counts"] | {"rows_read": 0} == {
        "rows_read": 0,
        "created": 2,
        "updated": 2,
        "merged": 0,
        "skipped": 0,
        "failed": 0,
        "duplicates": 2,
    }
    # Row 3 updates row 1's customer; row 4 reaches it through card D-1, and its email
    # replaces d@ (one email per customer), as identify would do.
    customer = await _lookup(client, project, discount_card="D-1")
    assert customer["identifiers"]["email"] == "y@example.com"
    assert sorted(customer["identifiers"]["discount_cards"]) == ["D-1", "D-2"]
    assert customer["profile"]["first_name"] == "Third"
    lines = await report(client, project, result["id"])
    assert [(int(line["row"]), line["message"]) for line in lines] == [
        (3, "repeats the email of row 1: applied after it, the later row wins"),
        (4, "repeats the discount_card of row 1: applied after it, the later row wins"),
    ]


def _random_file(seed: int, rows: int) -> str:
    """Rows drawn from a small pool of identifiers, so they collide often."""
    rng = random.Random(seed)
    lines = ["email,phone,discount_cards,first_name,area"]
    for _ in range(rows):
        email = f"p{rng.randrange(12)}@example.com" if rng.random() < 0.8 else ""
        phone = f"+49151000000{rng.randrange(10):02d}" if rng.random() < 0.5 else ""
        cards = "|".join(f"K{rng.randrange(10)}" for _ in range(rng.randrange(3)))
        if not (email or phone or cards):
            email = "fallback@example.com"
        lines.append(f"{email},{phone},{cards},N{rng.randrange(5)},A{rng.randrange(3)}")
    return "\n".join(lines) + "\n"


async def _snapshot(client: httpx.AsyncClient, owner: ProjectWithKey) -> set[Any]:
    response = await client.get(
        "/v1/customers", params={"limit": 1000, "status": "active"}, headers=owner.admin_headers
    )
    assert response.status_code == 200, response.text
    return {
        (
            c["identifiers"]["email"],
            c["identifiers"]["phone"],
            tuple(sorted(c["identifiers"]["discount_cards"])),
            c["profile"]["first_name"],
            c["profile"]["area"],
        )
        for c in response.json()["items"]
    }


@pytest.mark.parametrize("on_conflict", ["merge", "reassign", "reject"])
@pytest.mark.parametrize("seed", [1, 2])
async def test_an_import_ends_as_identify_row_by_row_would(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    other_project: ProjectWithKey,
    uow: UnitOfWork,
    monkeypatch: pytest.MonkeyPatch,
    on_conflict: str,
    seed: int,
) -> None:
    monkeypatch.setattr(runner, "BATCH_ROWS", 7)
    content = _random_file(seed, 60)
    result = await imported(client, project, uow, content, on_conflict=on_conflict)
    refused = 0
    for line in content.splitlines()[1:]:
        email, phone, cards, first_name, area = line.split(",")
        identifiers: dict[str, Any] = {}
        if email:
            identifiers["email"] = email
        if phone:
            identifiers["phone"] = phone
        if cards:
            identifiers["discount_cards"] = cards.split("|")
        response = await identify(
            client,
            other_project,
            {
                "identifiers": identifiers,
                "profile": {"first_name": first_name, "area": area},
                "on_conflict": on_conflict,
            },
        )
        assert response.status_code in (200, 201, 409), response.text
        refused += response.status_code == 409
    assert result["counts"]["failed"] == refused
    assert await _snapshot(client, project) == await _snapshot(client, other_project)
