"""Imports from an uploaded CSV: counts, the error report, identify's semantics, changelogs."""

from typing import Any

import httpx
import pytest

from app.core.db import UnitOfWork
from tests.factories import ProjectWithKey, identify
from tests.imports.helpers import imported, report


async def _customer_by_email(
    client: httpx.AsyncClient, owner: ProjectWithKey, email: str
) -> dict[str, Any]:
    response = await client.get(
        "/v1/customers/lookup", params={"email": email}, headers=owner.admin_headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _changelog(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/customers/{customer_id}/changelog", headers=owner.admin_headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _count_customers(client: httpx.AsyncClient, owner: ProjectWithKey) -> int:
    response = await client.get(
        "/v1/customers", params={"limit": 1000}, headers=owner.admin_headers
    )
    return len(response.json()["items"])


@pytest.fixture
async def tier_field(client: httpx.AsyncClient, project: ProjectWithKey) -> None:
    response = await client.post(
        "/v1/fields",
        headers=project.admin_headers,
        json={"key": "tier", "type": "enum", "enum_values": ["bronze", "silver", "gold"]},
    )
    assert response.status_code == 201, response.text


MIXED_FILE = (
    "email,phone,first_name,discount_cards,custom.tier\r\n"
    "ann@example.com,+49 30 1234567,Ann,C-1|C-2,gold\r\n"  # 1 new
    "not-an-email,,Bob,,\r\n"  # 2 bad email
    "carl@example.com,12,Carl,,\r\n"  # 3 bad phone
    "dora@example.com,,Dora,,platinum\r\n"  # 4 unknown enum value
    ",,Nobody,,\r\n"  # 5 no identifier
    "eve@example.com,,Eve\r\n"  # 6 wrong column count
    "old@example.com,,Olga,C-9,silver\r\n"  # 7 matches an existing customer
    '"fay@example.com","+49 30 7654321","Fay, ""the"" first",,bronze\r\n'  # 8 new, quoted
)


async def test_a_mixed_file_gives_exact_counts_report_and_changelog(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, tier_field: None
) -> None:
    existing = await identify(
        client,
        project,
        {"identifiers": {"email": "old@example.com"}, "profile": {"last_name": "O"}},
    )
    existing_id = existing.json()["customer"]["id"]

    result = await imported(client, project, uow, MIXED_FILE)

    assert result["status"] == "succeeded", result
    assert result["counts"] == {
        "rows_read": 8,
        "created": 2,
        "updated": 1,
        "merged": 0,
        "skipped": 0,
        "failed": 5,
        "duplicates": 0,
    }
    assert result["progress"] == 1.0
    lines = await report(client, project, result["id"])
    by_row = {int(line["row"]): line for line in lines}
    assert set(by_row) == {2, 3, 4, 5, 6}
    assert by_row[2]["column"] == "email"
    assert "not a valid email address" in by_row[2]["message"]
    assert by_row[3]["column"] == "phone"
    assert "not a valid phone number" in by_row[3]["message"]
    assert by_row[4]["column"] == "custom.tier"
    assert by_row[5]["message"] == "At least one usable identifier is required."
    assert by_row[6]["message"] == "expected 5 columns, found 3"
    assert by_row[6]["original_row"] == "eve@example.com,,Eve"

    ann = await _customer_by_email(client, project, "ann@example.com")
    assert ann["identifiers"]["phone"] == "+49301234567"
    assert sorted(ann["identifiers"]["discount_cards"]) == ["C-1", "C-2"]
    assert ann["profile"]["custom_fields"] == {"tier": "gold"}
    fay = await _customer_by_email(client, project, "fay@example.com")
    assert fay["profile"]["first_name"] == 'Fay, "the" first'

    olga = await _customer_by_email(client, project, "old@example.com")
    assert olga["id"] == existing_id
    assert olga["profile"]["first_name"] == "Olga"
    assert olga["profile"]["last_name"] == "O"
    assert olga["identifiers"]["discount_cards"] == ["C-9"]
    assert olga["version"] == 2
    assert await _count_customers(client, project) == 3

    touchpoint = f"import:{result['id']}"
    ann_log = await _changelog(client, project, ann["id"])
    assert {(r["operation"], r["field"], r["new_value"]) for r in ann_log} == {
        ("create", "first_name", "Ann"),
        ("create", "custom_fields.tier", "gold"),
        ("identifier_added", "email", "ann@example.com"),
        ("identifier_added", "phone", "+49301234567"),
        ("identifier_added", "discount_card", "C-1"),
        ("identifier_added", "discount_card", "C-2"),
    }
    assert {(r["touchpoint"], r["request_id"]) for r in ann_log} == {(touchpoint, touchpoint)}
    olga_log = [
        r for r in await _changelog(client, project, existing_id) if r["touchpoint"] == touchpoint
    ]
    assert {(r["operation"], r["field"], r["old_value"], r["new_value"]) for r in olga_log} == {
        ("update", "first_name", None, "Olga"),
        ("update", "custom_fields.tier", None, "silver"),
        ("identifier_added", "discount_card", None, "C-9"),
    }
    history = await client.get(
        f"/v1/customers/{ann['id']}/identifiers/history", headers=project.admin_headers
    )
    assert {(h["event"], h["kind"]) for h in history.json()["items"]} == {
        ("added", "email"),
        ("added", "phone"),
        ("added", "discount_card"),
    }


async def test_importing_the_same_file_again_changes_nothing(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, tier_field: None
) -> None:
    first = await imported(client, project, uow, MIXED_FILE)
    second = await imported(client, project, uow, MIXED_FILE)
    assert first["counts"]["created"] == 3
    assert second["counts"] | {"failed": 0} == {
        "rows_read": 8,
        "created": 0,
        "updated": 0,
        "merged": 0,
        "skipped": 3,
        "failed": 0,
        "duplicates": 0,
    }
    assert await _count_customers(client, project) == 3
