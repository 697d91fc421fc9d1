"""POST /v1/customers and /v1/customers/identify: create, update, conflicts, blocklist."""

from typing import Any

import httpx
import pytest

from tests.factories import ProjectWithKey, identify, make_unique_id_field


async def _history(client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str) -> list[Any]:
    response = await client.get(
        f"/v1/customers/{customer_id}/identifiers/history", headers=owner.admin_headers
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


class TestCreate:
    async def test_creates_with_normalised_identifiers(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/customers",
            headers=project.admin_headers,
            json={
                "identifiers": {
                    "email": " Jane.Doe@Example.COM ",
                    "phone": "+49 (30) 123-4567",
                    "discount_cards": [" CARD-1 ", "CARD-2"],
                },
                "profile": {"first_name": "Jane", "birth_date": "1990-01-31"},
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["result"] == "created"
        customer = body["customer"]
        assert customer["identifiers"] == {
            "email": "jane.doe@example.com",
            "phone": "+49301234567",
            "discount_cards": ["CARD-1", "CARD-2"],
            "external": {},
        }
        assert customer["profile"]["first_name"] == "Jane"
        assert customer["profile"]["birth_date"] == "1990-01-31"
        assert customer["status"] == "active"
        assert customer["version"] == 1
        assert response.headers["location"] == f"/v1/customers/{customer['id']}"
        assert response.headers["etag"] == '"1"'

    async def test_taken_identifier_is_409_naming_it(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        first = await client.post(
            "/v1/customers",
            headers=project.admin_headers,
            json={"identifiers": {"email": "a@example.com"}},
        )
        second = await client.post(
            "/v1/customers",
            headers=project.admin_headers,
            json={"identifiers": {"phone": "+14155552671", "email": "A@EXAMPLE.com"}},
        )
        assert second.status_code == 409
        problem = second.json()
        assert problem["errors"] == [
            {
                "location": "body",
                "pointer": "/identifiers/email",
                "message": f"Already identifies customer {first.json()['customer']['id']}.",
            }
        ]

    @pytest.mark.parametrize(
        "identifiers", [{}, {"discount_cards": []}, {"email": "null"}, {"email": "test@test.com"}]
    )
    async def test_no_usable_identifier_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey, identifiers: dict[str, Any]
    ) -> None:
        response = await client.post(
            "/v1/customers", headers=project.admin_headers, json={"identifiers": identifiers}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/identifiers"

    async def test_customer_id_cannot_be_chosen(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/customers",
            headers=project.admin_headers,
            json={
                "identifiers": {
                    "email": "x@example.com",
                    "customer_id": "01a22741-9713-75ce-bc96-01a8de0d14c8",
                }
            },
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/identifiers/customer_id"


class TestIdentify:
    async def test_creates_then_finds_by_any_spelling(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        project_region = await client.patch(
            "/v1/projects/current",
            headers=project.admin_headers,
            json={"default_phone_region": "DE"},
        )
        assert project_region.status_code == 200
        created = await identify(client, project, {"identifiers": {"phone": "030 1234567"}})
        assert created.status_code == 201
        assert created.json()["customer"]["identifiers"]["phone"] == "+49301234567"

        found = await identify(
            client,
            project,
            {"identifiers": {"phone": "+49 30 1234567"}, "profile": {"last_name": "Doe"}},
        )
        assert found.status_code == 200
        body = found.json()
        assert body["result"] == "updated"
        assert body["matched_by"] == ["phone"]
        assert body["customer"]["id"] == created.json()["customer"]["id"]
        assert body["customer"]["version"] == 2

    async def test_nothing_new_is_unchanged_and_keeps_the_version(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        body = {"identifiers": {"email": "same@example.com"}, "profile": {"first_name": "Al"}}
        await identify(client, project, body)
        again = await identify(client, project, body)
        assert again.json()["result"] == "unchanged"
        assert again.json()["customer"]["version"] == 1

    async def test_new_identifiers_are_attached(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await make_unique_id_field(client, project, "crm_id")
        await identify(client, project, {"identifiers": {"email": "b@example.com"}})
        response = await identify(
            client,
            project,
            {
                "identifiers": {
                    "email": "b@example.com",
                    "discount_cards": ["C-9"],
                    "external": {"crm_id": "CRM-1"},
                }
            },
        )
        identifiers = response.json()["customer"]["identifiers"]
        assert identifiers["discount_cards"] == ["C-9"]
        assert identifiers["external"] == {"crm_id": "CRM-1"}
        by_external = await identify(
            client, project, {"identifiers": {"external": {"crm_id": "CRM-1"}}}
        )
        assert by_external.json()["customer"]["id"] == response.json()["customer"]["id"]

    async def test_a_new_email_replaces_the_old_one_into_history(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        created = await identify(
            client, project, {"identifiers": {"phone": "+14155552671", "email": "old@example.com"}}
        )
        customer_id = created.json()["customer"]["id"]
        updated = await identify(
            client, project, {"identifiers": {"phone": "+14155552671", "email": "new@example.com"}}
        )
        assert updated.json()["customer"]["identifiers"]["email"] == "new@example.com"
        events = [
            (e["event"], e["value"], e["replaced_by"])
            for e in await _history(client, project, customer_id)
        ]
        assert ("replaced", "old@example.com", "new@example.com") in events
        assert events[0] == ("added", "new@example.com", None)

    async def test_by_customer_id(self, client: httpx.AsyncClient, project: ProjectWithKey) -> None:
        created = await identify(client, project, {"identifiers": {"email": "id@example.com"}})
        customer_id = created.json()["customer"]["id"]
        response = await identify(
            client,
            project,
            {"identifiers": {"customer_id": customer_id, "discount_cards": ["K-1"]}},
        )
        assert response.status_code == 200
        assert response.json()["matched_by"] == ["customer_id"]
        assert response.json()["customer"]["identifiers"]["discount_cards"] == ["K-1"]

    async def test_unknown_customer_id_is_404(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await identify(
            client,
            project,
            {"identifiers": {"customer_id": "01a22741-9713-75ce-bc96-01a8de0d14c8"}},
        )
        assert response.status_code == 404

    async def test_blocklisted_values_are_ignored_and_reported(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await identify(
            client,
            project,
            {
                "identifiers": {
                    "email": "test@test.com",
                    "phone": "undefined",
                    "discount_cards": ["0000", "REAL-1"],
                }
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["customer"]["identifiers"] == {
            "email": None,
            "phone": None,
            "discount_cards": ["REAL-1"],
            "external": {},
        }
        assert {(i["kind"], i["value"]) for i in body["ignored_identifiers"]} == {
            ("email", "test@test.com"),
            ("phone", "undefined"),
            ("discount_card", "0000"),
        }

    async def test_project_blocklist_entries_apply(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        added = await client.post(
            "/v1/identifier-blocklist",
            headers=project.admin_headers,
            json={"kind": "discount_card", "pattern": "^TEST-", "is_regex": True},
        )
        assert added.status_code == 201
        response = await identify(
            client, project, {"identifiers": {"discount_cards": ["test-123", "LIVE-1"]}}
        )
        assert response.json()["customer"]["identifiers"]["discount_cards"] == ["LIVE-1"]


class TestConflicts:
    async def _two_customers(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> tuple[str, str]:
        first = await identify(
            client,
            project,
            {"identifiers": {"email": "one@example.com", "discount_cards": ["D-1"]}},
        )
        second = await identify(
            client, project, {"identifiers": {"phone": "+14155550101", "discount_cards": ["D-2"]}}
        )
        return first.json()["customer"]["id"], second.json()["customer"]["id"]

    async def test_reject_is_409_listing_who_owns_what(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        first_id, second_id = await self._two_customers(client, project)
        response = await identify(
            client,
            project,
            {"identifiers": {"email": "one@example.com", "phone": "+1 415 555 0101"}},
        )
        assert response.status_code == 409
        messages = {e["pointer"]: e["message"] for e in response.json()["errors"]}
        assert messages == {
            "/identifiers/email": f"Identifies customer {first_id}.",
            "/identifiers/phone": f"Identifies customer {second_id}.",
        }

    async def test_reassign_moves_to_the_highest_priority_match(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        first_id, second_id = await self._two_customers(client, project)
        # The card (D-2, second customer) outranks the email (first customer).
        response = await identify(
            client,
            project,
            {
                "identifiers": {"email": "one@example.com", "discount_cards": ["D-2"]},
                "on_conflict": "reassign",
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["result"] == "reassigned"
        assert body["customer"]["id"] == second_id
        assert body["customer"]["identifiers"]["email"] == "one@example.com"
        assert body["matched_by"] == ["discount_card", "email"]

        source = await client.get(f"/v1/customers/{first_id}", headers=project.admin_headers)
        assert source.json()["identifiers"]["email"] is None
        assert source.json()["identifiers"]["discount_cards"] == ["D-1"]
        moved_out = [
            e for e in await _history(client, project, first_id) if e["event"] == "moved_out"
        ]
        moved_in = [
            e for e in await _history(client, project, second_id) if e["event"] == "moved_in"
        ]
        assert [(e["value"], e["other_customer_id"]) for e in moved_out] == [
            ("one@example.com", second_id)
        ]
        assert [(e["value"], e["other_customer_id"]) for e in moved_in] == [
            ("one@example.com", first_id)
        ]

    async def test_reassign_never_strips_a_customer_bare(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await identify(client, project, {"identifiers": {"email": "only@example.com"}})
        await identify(client, project, {"identifiers": {"discount_cards": ["Z-1"]}})
        response = await identify(
            client,
            project,
            {
                "identifiers": {"email": "only@example.com", "discount_cards": ["Z-1"]},
                "on_conflict": "reassign",
            },
        )
        assert response.status_code == 409
        assert "without any identifier" in response.json()["detail"]
