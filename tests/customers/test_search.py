"""GET /v1/customers as a search: each filter and combinations against a known population,
keyset pagination in every sort order, tenancy, and a 422 for every bad value."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.core.db import UnitOfWork
from app.core.pagination import encode_cursor
from tests.factories import ProjectWithKey, identify

Params = dict[str, Any]

# The population, built through the API in both projects: every filter run with one
# project's key must find only that project's customers, although the other holds twins.
PEOPLE: dict[str, dict[str, Any]] = {
    "ann": {
        "identifiers": {
            "email": "ann.lee@example.com",
            "phone": "+49 30 1111111",
            "discount_cards": ["CARD-100"],
            "external": {"crm_id": "C-1"},
        },
        "profile": {
            "first_name": "Ann",
            "last_name": "Lee",
            "birth_date": "1990-01-31",
            "gender": "female",
            "area": "Berlin",
            "custom_fields": {
                "tier": "gold",
                "visits": 3,
                "vip": True,
                "spend": "12.50",
                "joined": "2024-05-01",
            },
        },
    },
    "bob": {
        "identifiers": {"email": "BOB@Example.COM", "phone": "+49 89 2222222"},
        "profile": {
            "first_name": "Bob",
            "last_name": "Anders",
            "middle_name": "Annick",
            "birth_date": "1985-06-15",
            "gender": "male",
            "area": "berlin",
            "custom_fields": {"tier": "silver", "visits": 10, "vip": False, "spend": "12.5"},
        },
    },
    "cat": {
        "identifiers": {"email": "cat@other.org"},
        "profile": {
            "first_name": "Catherine",
            "last_name": "annan",
            "birth_date": "2000-12-31",
            "gender": "female",
            "area": "Hamburg",
            "custom_fields": {"tier": "gold", "visits": 3, "spend": "7"},
        },
    },
    "dan": {
        "identifiers": {"phone": "+1 415 555 0100", "discount_cards": ["CARD_1%"]},
        "profile": {"gender": "unknown", "custom_fields": {"tier": "bronze"}},
    },
    "eve": {
        "identifiers": {"email": "eve@example.com", "external": {"crm_id": "C-2"}},
        "profile": {
            "first_name": "Eve",
            "last_name": "Lee",
            "birth_date": "1990-01-31",
            "gender": "female",
            "area": "BERLIN",
            "custom_fields": {"tier": "gold", "spend": "12.500"},
        },
    },
}
SUBSCRIPTIONS: dict[str, list[dict[str, Any]]] = {
    "ann": [
        {"channel": "email", "status": "subscribed"},
        {"channel": "email", "topic": "newsletter", "status": "subscribed"},
    ],
    "bob": [
        {"channel": "email", "status": "unsubscribed"},
        {"channel": "sms", "status": "subscribed"},
    ],
    "cat": [{"channel": "email", "status": "pending"}],
    "dan": [{"channel": "sms", "status": "unsubscribed"}],
}
VIP_MEMBERS = ("ann", "eve")
FIELDS: list[dict[str, Any]] = [
    {"key": "tier", "type": "enum", "enum_values": ["gold", "silver", "bronze"]},
    {"key": "visits", "type": "integer"},
    {"key": "vip", "type": "boolean"},
    {"key": "spend", "type": "decimal"},
    {"key": "joined", "type": "date"},
    {"key": "crm_id", "type": "unique_id"},
]


async def _post(
    client: httpx.AsyncClient, owner: ProjectWithKey, url: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(url, headers=owner.admin_headers, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _population(client: httpx.AsyncClient, owner: ProjectWithKey) -> dict[str, str]:
    """Name -> customer id; also the project's fields, topic, consent and a segment."""
    for field in FIELDS:
        await _post(client, owner, "/v1/fields", field)
    await _post(
        client,
        owner,
        "/v1/subscription-topics",
        {"key": "newsletter", "name": "Newsletter", "channels": ["email"]},
    )
    ids: dict[str, str] = {}
    for name, body in PEOPLE.items():
        response = await identify(client, owner, body)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["customer"]["id"]
    await _put(
        client,
        owner,
        f"/v1/customers/{ids['eve']}/devices/inst-eve-1",
        {"kind": "mobile_app", "app_id": "shop", "platform": "ios"},
    )
    for name, decisions in SUBSCRIPTIONS.items():
        await _put(
            client,
            owner,
            f"/v1/customers/{ids[name]}/subscriptions",
            {"subscriptions": decisions},
        )
    return ids


async def _put(
    client: httpx.AsyncClient, owner: ProjectWithKey, url: str, body: dict[str, Any]
) -> None:
    response = await client.put(url, headers=owner.admin_headers, json=body)
    assert response.status_code in (200, 201), response.text


async def _vip_segment(
    client: httpx.AsyncClient, owner: ProjectWithKey, ids: dict[str, str]
) -> tuple[str, str]:
    """(segmentation id, segment id) of a manual segment holding VIP_MEMBERS."""
    created = await _post(
        client,
        owner,
        "/v1/segmentations",
        {
            "key": "vip",
            "name": "VIP",
            "kind": "manual",
            "segments": [{"key": "vip", "name": "VIP"}],
        },
    )
    await _put(
        client,
        owner,
        f"/v1/segmentations/{created['id']}/members",
        {"changes": [{"segment": "vip", "customer": {"customer_id": ids[n]}} for n in VIP_MEMBERS]},
    )
    return created["id"], created["segments"][0]["id"]


async def _all_pages(
    client: httpx.AsyncClient, owner: ProjectWithKey, params: Params, *, limit: int = 1000
) -> list[str]:
    """Every id the search returns, following next_cursor, in order."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page_params = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            "/v1/customers", headers=owner.admin_headers, params=page_params
        )
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen


# (query, the names it finds). Names are found in id order (creation order): PEOPLE's order.
FILTER_CASES: list[tuple[Params, set[str]]] = [
    ({}, {"ann", "bob", "cat", "dan", "eve"}),
    ({"email_domain": "example.com"}, {"ann", "bob", "eve"}),
    ({"email_domain": " @EXAMPLE.com"}, {"ann", "bob", "eve"}),
    ({"email_domain": "other.org"}, {"cat"}),
    ({"email_domain": "ample.com"}, set()),
    ({"identifier_kind": "phone", "identifier_prefix": "+4930"}, {"ann"}),
    # An unescaped "+" in a query string arrives as a space.
    ({"identifier_kind": "phone", "identifier_prefix": " 49"}, {"ann", "bob"}),
    ({"identifier_kind": "phone", "identifier_prefix": "+1 (415)"}, {"dan"}),
    ({"identifier_kind": "email", "identifier_prefix": "ANN."}, {"ann"}),
    ({"identifier_kind": "email", "identifier_prefix": "e"}, {"eve"}),
    ({"identifier_kind": "discount_card", "identifier_prefix": "CARD"}, {"ann", "dan"}),
    # LIKE wildcards in a prefix are matched literally.
    ({"identifier_kind": "discount_card", "identifier_prefix": "CARD_"}, {"dan"}),
    ({"identifier_kind": "discount_card", "identifier_prefix": "CARD-1%"}, set()),
    ({"identifier_kind": "discount_card", "identifier_prefix": "card"}, set()),
    ({"identifier_kind": "external:crm_id", "identifier_prefix": "C-"}, {"ann", "eve"}),
    ({"identifier_kind": "external:crm_id", "identifier_prefix": "C-2"}, {"eve"}),
    ({"identifier_kind": "app_installation", "identifier_prefix": "inst-"}, {"eve"}),
    ({"name": "ann"}, {"ann", "bob", "cat"}),  # first, middle ("Annick"), last ("annan")
    ({"name": "LEE"}, {"ann", "eve"}),
    ({"name": "Cath"}, {"cat"}),
    ({"name": "nn"}, set()),
    ({"name": "%"}, set()),
    ({"birth_date_from": "1990-01-31", "birth_date_to": "1990-01-31"}, {"ann", "eve"}),
    ({"birth_date_from": "1986-01-01"}, {"ann", "cat", "eve"}),
    ({"birth_date_to": "1989-12-31"}, {"bob"}),
    ({"gender": "female"}, {"ann", "cat", "eve"}),
    ({"gender": "unknown"}, {"dan"}),
    ({"area": "berlin"}, {"ann", "bob", "eve"}),
    ({"area": "HAMBURG"}, {"cat"}),
    ({"area": "Berl"}, set()),
    ({"custom": "tier:gold"}, {"ann", "cat", "eve"}),
    ({"custom": "visits:3"}, {"ann", "cat"}),
    ({"custom": "visits:+10"}, {"bob"}),
    ({"custom": "vip:true"}, {"ann"}),
    ({"custom": "vip:false"}, {"bob"}),
    # Decimals are stored with the scale sent ("12.50", "12.5", "12.500"): one number.
    ({"custom": "spend:12.5"}, {"ann", "bob", "eve"}),
    ({"custom": "spend:12.5000"}, {"ann", "bob", "eve"}),
    ({"custom": "spend:7.00"}, {"cat"}),
    ({"custom": "spend:1.25e1"}, {"ann", "bob", "eve"}),
    ({"custom": "joined:2024-05-01"}, {"ann"}),
    ({"custom": ["tier:gold", "visits:3"]}, {"ann", "cat"}),
    ({"subscription": "email:subscribed"}, {"ann"}),
    ({"subscription": "email.newsletter:subscribed"}, {"ann"}),
    ({"subscription": "email:unsubscribed"}, {"bob"}),
    ({"subscription": "email:pending"}, {"cat"}),
    ({"subscription": "sms:subscribed"}, {"bob"}),
    ({"subscription": "sms:unsubscribed"}, {"dan"}),
    ({"subscription": "email.unknown_topic:subscribed"}, set()),
    ({"subscription": ["email:subscribed", "sms:subscribed"]}, set()),
    ({"gender": "female", "area": "Berlin", "custom": "tier:gold"}, {"ann", "eve"}),
    (
        {
            "gender": "female",
            "area": "Berlin",
            "custom": "tier:gold",
            "subscription": "email:subscribed",
        },
        {"ann"},
    ),
    ({"email_domain": "example.com", "name": "lee"}, {"ann", "eve"}),
    (
        {
            "email_domain": "example.com",
            "identifier_kind": "phone",
            "identifier_prefix": "+49",
            "birth_date_from": "1980-01-01",
            "birth_date_to": "1989-12-31",
        },
        {"bob"},
    ),
    ({"status": "merged"}, set()),
]


@pytest.mark.parametrize(("params", "expected"), FILTER_CASES)
async def test_each_filter_finds_exactly_its_customers_of_the_project(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    other_project: ProjectWithKey,
    params: Params,
    expected: set[str],
) -> None:
    ids = await _population(client, project)
    twins = await _population(client, other_project)
    found = await _all_pages(client, project, params)
    names = {customer_id: name for name, customer_id in ids.items()}
    assert set(found) <= set(names), "another project's customer was found"
    assert [names[customer_id] for customer_id in found] == [n for n in ids if n in expected]
    # The twins in the other project are found by its own key, the same way.
    assert {*await _all_pages(client, other_project, params)} == {twins[n] for n in expected}


async def test_segment_filter_finds_current_members_of_the_project_only(
    client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
) -> None:
    ids = await _population(client, project)
    twins = await _population(client, other_project)
    segmentation_id, segment_id = await _vip_segment(client, project, ids)
    _, other_segment_id = await _vip_segment(client, other_project, twins)

    assert await _all_pages(client, project, {"segment_id": segment_id}) == [
        ids["ann"],
        ids["eve"],
    ]
    combined = {"segment_id": segment_id, "subscription": "email:subscribed"}
    assert await _all_pages(client, project, combined) == [ids["ann"]]
    # Another project's segment (or one that does not exist) holds none of this project's.
    assert await _all_pages(client, project, {"segment_id": other_segment_id}) == []
    # Leaving the segment leaves the results.
    await _put(
        client,
        project,
        f"/v1/segmentations/{segmentation_id}/members",
        {"changes": [{"segment": None, "customer": {"customer_id": ids["ann"]}}]},
    )
    assert await _all_pages(client, project, {"segment_id": segment_id}) == [ids["eve"]]


async def test_old_filters_still_work_with_the_new_ones(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    ids = await _population(client, project)
    boundary = datetime.now(UTC).isoformat()
    late = await identify(
        client,
        project,
        {"identifiers": {"email": "late@example.com"}, "profile": {"gender": "female"}},
    )
    params: Params = {"created_since": boundary, "email_domain": "example.com"}
    assert await _all_pages(client, project, params) == [late.json()["customer"]["id"]]
    await client.patch(
        f"/v1/customers/{ids['cat']}",
        headers=project.admin_headers,
        json={"profile": {"area": "x"}},
    )
    params = {"updated_since": boundary, "gender": "female"}
    assert await _all_pages(client, project, params) == [ids["cat"], late.json()["customer"]["id"]]


# --- pagination -------------------------------------------------------------------------

LAST_NAMES = ["Lee", None, "Berg", "Lee", "Adams", None, "Lee", "Zorn", "Berg", "Cole", "Lee"]


async def _paging_population(
    client: httpx.AsyncClient, owner: ProjectWithKey, uow: UnitOfWork
) -> list[dict[str, Any]]:
    """Customers with repeated last names and repeated updated_at values (ties)."""
    ids = []
    for n, last_name in enumerate(LAST_NAMES):
        response = await identify(
            client,
            owner,
            {
                "identifiers": {"email": f"page{n}@example.com"},
                "profile": {"last_name": last_name, "gender": "female" if n % 4 else "male"},
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["customer"]["id"])
    # Three pairs of customers changed at the very same instant: the id breaks the tie.
    async with uow:
        for n, pair in enumerate([(0, 5), (2, 9), (4, 10)]):
            await uow.session.execute(
                text("UPDATE customers SET updated_at = :at WHERE id = ANY(:ids)"),
                {
                    "at": datetime(2030, 1, 1 + n, tzinfo=UTC),
                    "ids": [uuid.UUID(ids[i]) for i in pair],
                },
            )
    response = await client.get(
        "/v1/customers", headers=owner.admin_headers, params={"limit": 1000}
    )
    customers: list[dict[str, Any]] = response.json()["items"]
    return customers


def _expected_order(customers: list[dict[str, Any]], sort: str) -> list[str]:
    name = sort.removeprefix("-")

    def key(customer: dict[str, Any]) -> tuple[Any, ...]:
        if name == "id":
            return (customer["id"],)
        if name == "updated_at":
            return (datetime.fromisoformat(customer["updated_at"]), customer["id"])
        # Without a last name: ''. ASCII names of one case sort alike in every collation.
        return (customer["profile"]["last_name"] or "", customer["id"])

    return [c["id"] for c in sorted(customers, key=key, reverse=sort.startswith("-"))]


SORTS = ["id", "-id", "updated_at", "-updated_at", "last_name", "-last_name"]


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 2, 3, 5])
async def test_pages_in_every_sort_order_without_skips_or_repeats(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork, sort: str, limit: int
) -> None:
    customers = await _paging_population(client, project, uow)
    expected = _expected_order(customers, sort)
    assert await _all_pages(client, project, {"sort": sort}, limit=limit) == expected
    # With a filter, the same order restricted to the customers it matches.
    women = {c["id"] for c in customers if c["profile"]["gender"] == "female"}
    filtered = await _all_pages(client, project, {"sort": sort, "gender": "female"}, limit=limit)
    assert filtered == [i for i in expected if i in women]


async def test_a_page_boundary_is_kept_while_customers_are_added(
    client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
) -> None:
    customers = await _paging_population(client, project, uow)
    first = await client.get(
        "/v1/customers", headers=project.admin_headers, params={"sort": "last_name", "limit": 4}
    )
    # Sorts before the cursor: not shown on later pages, and nothing shown is repeated.
    await identify(client, project, {"identifiers": {"email": "new@example.com"}, "profile": {}})
    rest = await _all_pages(
        client, project, {"sort": "last_name", "cursor": first.json()["next_cursor"]}
    )
    expected = _expected_order(customers, "last_name")
    assert [c["id"] for c in first.json()["items"]] + rest == expected


@pytest.mark.parametrize(
    ("first_sort", "second_sort"),
    [
        ("id", "-id"),
        ("-id", "id"),
        ("id", "updated_at"),
        ("updated_at", "-updated_at"),
        ("last_name", "id"),
        ("updated_at", "last_name"),
    ],
)
async def test_a_cursor_of_another_sort_is_422(
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    uow: UnitOfWork,
    first_sort: str,
    second_sort: str,
) -> None:
    await _paging_population(client, project, uow)
    first = await client.get(
        "/v1/customers", headers=project.admin_headers, params={"sort": first_sort, "limit": 2}
    )
    cursor = first.json()["next_cursor"]
    response = await client.get(
        "/v1/customers",
        headers=project.admin_headers,
        params={"sort": second_sort, "cursor": cursor},
    )
    _assert_query_problem(response, "/cursor")


SOME_ID = "0193a6f1-c1e2-7c3c-9e1f-4b3c2a1d0e9f"


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        encode_cursor({"sort": "updated_at"}),  # type: ignore[arg-type]
        encode_cursor(["updated_at", "not a time", SOME_ID]),
        encode_cursor(["updated_at", "2026-01-01T00:00:00", SOME_ID]),  # no offset
        encode_cursor(["updated_at", 2, 3]),
        encode_cursor(["updated_at", "2026-01-01T00:00:00+00:00", "not an id"]),
        encode_cursor(["updated_at"]),
        encode_cursor([]),
    ],
)
async def test_a_broken_cursor_is_422(
    client: httpx.AsyncClient, project: ProjectWithKey, cursor: str
) -> None:
    response = await client.get(
        "/v1/customers",
        headers=project.admin_headers,
        params={"sort": "updated_at", "cursor": cursor},
    )
    _assert_query_problem(response, "/cursor")


# --- bad values ---------------------------------------------------------------------------

BAD_VALUES: list[tuple[Params, str]] = [
    ({"email_domain": "not a domain"}, "/email_domain"),
    ({"email_domain": "a@example.com"}, "/email_domain"),
    ({"email_domain": "localhost"}, "/email_domain"),
    ({"email_domain": ""}, "/email_domain"),
    ({"identifier_kind": "phone"}, "/identifier_prefix"),
    ({"identifier_prefix": "+49"}, "/identifier_kind"),
    ({"identifier_kind": "fax", "identifier_prefix": "1"}, "/identifier_kind"),
    ({"identifier_kind": "customer_id", "identifier_prefix": "1"}, "/identifier_kind"),
    ({"identifier_kind": "external:nope", "identifier_prefix": "1"}, "/identifier_kind"),
    ({"identifier_kind": "external:tier", "identifier_prefix": "g"}, "/identifier_kind"),
    ({"identifier_kind": "phone", "identifier_prefix": "+49abc"}, "/identifier_prefix"),
    ({"identifier_kind": "phone", "identifier_prefix": "+1234567890123456"}, "/identifier_prefix"),
    ({"identifier_kind": "email", "identifier_prefix": "  "}, "/identifier_prefix"),
    ({"identifier_kind": "discount_card", "identifier_prefix": "A\u200bB"}, "/identifier_prefix"),
    ({"name": ""}, "/name"),
    ({"name": "   "}, "/name"),
    ({"name": "x" * 201}, "/name"),
    ({"birth_date_from": "1990-13-01"}, "/birth_date_from"),
    ({"birth_date_to": "yesterday"}, "/birth_date_to"),
    ({"birth_date_from": "2000-01-02", "birth_date_to": "2000-01-01"}, "/birth_date_from"),
    ({"gender": "other"}, "/gender"),
    ({"area": ""}, "/area"),
    ({"custom": "tier"}, "/custom/0"),
    ({"custom": "nope:1"}, "/custom/0"),
    ({"custom": "crm_id:C-1"}, "/custom/0"),
    ({"custom": "visits:3.5"}, "/custom/0"),
    ({"custom": "visits:99999999999999999999"}, "/custom/0"),
    ({"custom": "vip:yes"}, "/custom/0"),
    ({"custom": "spend:twelve"}, "/custom/0"),
    ({"custom": "joined:2024-02-30"}, "/custom/0"),
    ({"custom": "tier:platinum"}, "/custom/0"),
    ({"custom": ["tier:gold", "visits:x"]}, "/custom/1"),
    ({"custom": [f"visits:{n}" for n in range(11)]}, "/custom"),
    ({"segment_id": "vip"}, "/segment_id"),
    ({"subscription": "email"}, "/subscription/0"),
    ({"subscription": "fax:subscribed"}, "/subscription/0"),
    ({"subscription": "email:maybe"}, "/subscription/0"),
    ({"subscription": "email.Bad Topic:subscribed"}, "/subscription/0"),
    ({"subscription": ["sms:subscribed", ":subscribed"]}, "/subscription/1"),
    ({"sort": "first_name"}, "/sort"),
    ({"status": "gone"}, "/status"),
    ({"updated_since": "yesterday"}, "/updated_since"),
]


@pytest.mark.parametrize(("params", "pointer"), BAD_VALUES)
async def test_a_bad_value_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, project: ProjectWithKey, params: Params, pointer: str
) -> None:
    for field in FIELDS:
        await _post(client, project, "/v1/fields", field)
    response = await client.get("/v1/customers", headers=project.admin_headers, params=params)
    _assert_query_problem(response, pointer)


async def test_every_bad_value_is_reported_at_once(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    params: Params = {
        "email_domain": "nope",
        "identifier_kind": "fax",
        "identifier_prefix": "1",
        "custom": "unknown:1",
        "subscription": "fax:subscribed",
        "birth_date_from": "2000-01-02",
        "birth_date_to": "2000-01-01",
    }
    response = await client.get("/v1/customers", headers=project.admin_headers, params=params)
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {
        "/email_domain",
        "/identifier_kind",
        "/custom/0",
        "/subscription/0",
        "/birth_date_from",
    }


def _assert_query_problem(response: httpx.Response, pointer: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:cdp:problem:validation-error"
    assert {"location": "query", "pointer": pointer} in [
        {"location": e["location"], "pointer": e["pointer"]} for e in body["errors"]
    ], body
