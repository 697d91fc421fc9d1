"""GET by id, lookup by identifier, list with filters, and tenancy of every read."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.factories import ProjectWithKey, identify, make_unique_id_field


async def _create(client: httpx.AsyncClient, owner: ProjectWithKey, **identifiers: object) -> str:
    response = await identify(client, owner, {"identifiers": identifiers})
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


class TestGet:
    async def test_reads_with_etag(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _create(client, project, email="get@example.com")
        response = await client.get(f"/v1/customers/{customer_id}", headers=project.admin_headers)
        assert response.status_code == 200
        assert response.headers["etag"] == '"1"'
        assert response.json()["identifiers"]["email"] == "get@example.com"
        assert response.json()["merged_ids"] == []

    async def test_unknown_is_404_and_malformed_id_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        unknown = await client.get(f"/v1/customers/{uuid.uuid4()}", headers=project.admin_headers)
        malformed = await client.get("/v1/customers/not-an-id", headers=project.admin_headers)
        assert (unknown.status_code, malformed.status_code) == (404, 422)
        assert malformed.json()["errors"][0]["location"] == "path"


class TestLookup:
    @pytest.mark.parametrize(
        ("parameter", "spelling"),
        [
            ("email", "LOOK@Example.com"),
            ("phone", "+1 (415) 555-2671"),
            ("discount_card", " LC-1 "),
            ("external.crm_id", "CRM-7"),
        ],
    )
    async def test_finds_by_each_kind_in_any_spelling(
        self, client: httpx.AsyncClient, project: ProjectWithKey, parameter: str, spelling: str
    ) -> None:
        await make_unique_id_field(client, project, "crm_id")
        customer_id = await _create(
            client,
            project,
            email="look@example.com",
            phone="+14155552671",
            discount_cards=["LC-1"],
            external={"crm_id": "CRM-7"},
        )
        response = await client.get(
            "/v1/customers/lookup", headers=project.admin_headers, params={parameter: spelling}
        )
        assert response.status_code == 200, response.text
        assert response.json()["id"] == customer_id

    async def test_unknown_value_is_404(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.get(
            "/v1/customers/lookup",
            headers=project.admin_headers,
            params={"email": "no@example.com"},
        )
        assert response.status_code == 404

    @pytest.mark.parametrize(
        "params",
        [{}, {"email": "a@example.com", "phone": "+14155552671"}, {"external.": "x"}],
    )
    async def test_exactly_one_identifier_is_required(
        self, client: httpx.AsyncClient, project: ProjectWithKey, params: dict[str, str]
    ) -> None:
        response = await client.get(
            "/v1/customers/lookup", headers=project.admin_headers, params=params
        )
        assert response.status_code == 422

    async def test_invalid_value_is_422_pointing_at_the_parameter(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.get(
            "/v1/customers/lookup", headers=project.admin_headers, params={"phone": "12"}
        )
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert (error["location"], error["pointer"]) == ("query", "/phone")


class TestList:
    async def test_pages_through_everyone_in_creation_order(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        created = [await _create(client, project, email=f"l{n}@example.com") for n in range(7)]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = await client.get("/v1/customers", headers=project.admin_headers, params=params)
            assert page.status_code == 200
            seen += [c["id"] for c in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == created

    async def test_filters_by_time_and_status(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await _create(client, project, email="early@example.com")
        boundary = datetime.now(UTC).isoformat()
        late = await _create(client, project, email="late@example.com")
        created_since = await client.get(
            "/v1/customers", headers=project.admin_headers, params={"created_since": boundary}
        )
        assert [c["id"] for c in created_since.json()["items"]] == [late]
        merged = await client.get(
            "/v1/customers", headers=project.admin_headers, params={"status": "merged"}
        )
        assert merged.json()["items"] == []
        invalid = await client.get(
            "/v1/customers", headers=project.admin_headers, params={"status": "gone"}
        )
        assert invalid.status_code == 422


class TestTenancy:
    async def test_same_email_in_two_projects_is_two_customers(
        self, client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
    ) -> None:
        first = await _create(client, project, email="shared@example.com")
        second = await _create(client, other_project, email="shared@example.com")
        assert first != second

    async def test_another_projects_customer_is_404_everywhere(
        self, client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
    ) -> None:
        customer_id = await _create(client, project, email="mine@example.com")
        headers = other_project.admin_headers
        responses = [
            await client.get(f"/v1/customers/{customer_id}", headers=headers),
            await client.patch(
                f"/v1/customers/{customer_id}", headers=headers, json={"profile": {"area": "x"}}
            ),
            await client.get(f"/v1/customers/{customer_id}/changelog", headers=headers),
            await client.get(f"/v1/customers/{customer_id}/identifiers/history", headers=headers),
            await identify(client, other_project, {"identifiers": {"customer_id": customer_id}}),
            await client.get(
                "/v1/customers/lookup", headers=headers, params={"email": "mine@example.com"}
            ),
        ]
        assert [r.status_code for r in responses] == [404] * 6
        listed = await client.get("/v1/customers", headers=headers)
        assert listed.json()["items"] == []
        untouched = await client.get(f"/v1/customers/{customer_id}", headers=project.admin_headers)
        assert untouched.json()["version"] == 1
