"""Bad input: a 422 problem pointing at each bad value, and the database unchanged."""

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, identify

TABLES = ("customers", "customer_identifiers", "identifier_history", "profile_changelog")


async def _row_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return {t: await connection.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await connection.close()


@pytest.fixture
async def seeded(client: httpx.AsyncClient, project: ProjectWithKey) -> None:
    await client.post(
        "/v1/fields",
        headers=project.admin_headers,
        json={"key": "tier", "type": "enum", "enum_values": ["gold", "silver"]},
    )
    await identify(client, project, {"identifiers": {"email": "seed@example.com"}})


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "wrong types",
        {"identifiers": {"email": 5, "discount_cards": "C-1"}},
        {"/identifiers/email", "/identifiers/discount_cards"},
    ),
    (
        "unknown field",
        {"identifiers": {"email": "a@example.com", "fax": "1"}},
        {"/identifiers/fax"},
    ),
    ("unknown top-level", {"identifiers": {"email": "a@example.com"}, "extra": 1}, {"/extra"}),
    (
        "too long name",
        {"identifiers": {"email": "a@example.com"}, "profile": {"first_name": "x" * 201}},
        {"/profile/first_name"},
    ),
    (
        "too long card",
        {"identifiers": {"discount_cards": ["x" * 65]}},
        {"/identifiers/discount_cards/0"},
    ),
    ("invalid email", {"identifiers": {"email": "not-an-email"}}, {"/identifiers/email"}),
    ("invalid phone", {"identifiers": {"phone": "12"}}, {"/identifiers/phone"}),
    (
        "invalid date",
        {"identifiers": {"email": "a@example.com"}, "profile": {"birth_date": "1990-02-30"}},
        {"/profile/birth_date"},
    ),
    (
        "future birth date",
        {"identifiers": {"email": "a@example.com"}, "profile": {"birth_date": "2999-01-01"}},
        {"/profile/birth_date"},
    ),
    (
        "invalid time zone",
        {"identifiers": {"email": "a@example.com"}, "profile": {"time_zone": "Mars/Olympus"}},
        {"/profile/time_zone"},
    ),
    (
        "invalid gender",
        {"identifiers": {"email": "a@example.com"}, "profile": {"gender": "x"}},
        {"/profile/gender"},
    ),
    (
        "invalid enum value",
        {
            "identifiers": {"email": "a@example.com"},
            "profile": {"custom_fields": {"tier": "platinum"}},
        },
        {"/profile/custom_fields/tier"},
    ),
    (
        "unknown custom field",
        {"identifiers": {"email": "a@example.com"}, "profile": {"custom_fields": {"nope": 1}}},
        {"/profile/custom_fields/nope"},
    ),
    (
        "unknown external field",
        {"identifiers": {"external": {"crm": "1"}}},
        {"/identifiers/external/crm"},
    ),
    (
        "several at once",
        {
            "identifiers": {"email": "bad", "phone": "bad"},
            "profile": {"custom_fields": {"tier": 3}},
        },
        {"/identifiers/email", "/identifiers/phone", "/profile/custom_fields/tier"},
    ),
    (
        "bad on_conflict",
        {"identifiers": {"email": "a@example.com"}, "on_conflict": "ignore"},
        {"/on_conflict"},
    ),
]


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(("case", "body", "pointers"), CASES, ids=[c[0] for c in CASES])
async def test_identify_refuses_with_pointers_and_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    database_url: str,
    case: str,
    body: dict[str, Any],
    pointers: set[str],
) -> None:
    before = await _row_counts(database_url)
    response = await identify(client, project, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["pointer"] for e in response.json()["errors"]} == pointers
    assert await _row_counts(database_url) == before


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        # Shape errors (the schema) are reported together...
        (
            {"profile": {"time_zone": "Nowhere/Zone", "gender": 1}},
            {"/profile/time_zone", "/profile/gender"},
        ),
        # ...and so are value errors (normalisation, custom field rules).
        (
            {
                "identifiers": {"email": "broken", "discount_cards": ["ok", ""]},
                "profile": {"custom_fields": {"tier": "bronze"}},
            },
            {"/identifiers/email", "/identifiers/discount_cards/1", "/profile/custom_fields/tier"},
        ),
    ],
)
async def test_patch_refuses_with_pointers_and_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    database_url: str,
    body: dict[str, Any],
    pointers: set[str],
) -> None:
    found = await client.get(
        "/v1/customers/lookup", headers=project.admin_headers, params={"email": "seed@example.com"}
    )
    customer_id = found.json()["id"]
    before = await _row_counts(database_url)
    response = await client.patch(
        f"/v1/customers/{customer_id}", headers=project.admin_headers, json=body
    )
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == pointers
    assert await _row_counts(database_url) == before
