"""PATCH /v1/customers/{id}: merge patch of profile and identifiers, If-Match, history."""

from typing import Any

import httpx
import pytest

from tests.factories import ProjectWithKey, identify, make_unique_id_field


async def _customer(client: httpx.AsyncClient, owner: ProjectWithKey, **identifiers: Any) -> str:
    response = await identify(
        client,
        owner,
        {"identifiers": identifiers, "profile": {"first_name": "Ann", "area": "North"}},
    )
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


async def _patch(
    client: httpx.AsyncClient,
    owner: ProjectWithKey,
    customer_id: str,
    body: dict[str, Any],
    **headers: str,
) -> httpx.Response:
    return await client.patch(
        f"/v1/customers/{customer_id}", headers=owner.admin_headers | headers, json=body
    )


class TestProfile:
    async def test_merge_patch_sets_clears_and_keeps(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(client, project, email="p@example.com")
        response = await _patch(
            client,
            project,
            customer_id,
            {"profile": {"last_name": "Lee", "area": None, "gender": "female"}},
        )
        assert response.status_code == 200, response.text
        profile = response.json()["profile"]
        assert (
            profile["first_name"],
            profile["last_name"],
            profile["area"],
            profile["gender"],
        ) == (
            "Ann",
            "Lee",
            None,
            "female",
        )
        assert response.json()["version"] == 2
        assert response.headers["etag"] == '"2"'

    async def test_custom_fields_are_validated_and_merged(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        for body in (
            {"key": "tier", "type": "enum", "enum_values": ["gold", "silver"]},
            {"key": "visits", "type": "integer"},
        ):
            assert (
                await client.post("/v1/fields", headers=project.admin_headers, json=body)
            ).status_code == 201
        customer_id = await _customer(client, project, email="cf@example.com")
        first = await _patch(
            client,
            project,
            customer_id,
            {"profile": {"custom_fields": {"tier": "gold", "visits": 3}}},
        )
        assert first.json()["profile"]["custom_fields"] == {"tier": "gold", "visits": 3}
        second = await _patch(
            client, project, customer_id, {"profile": {"custom_fields": {"tier": None}}}
        )
        assert second.json()["profile"]["custom_fields"] == {"visits": 3}

    async def test_an_empty_patch_changes_nothing(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(client, project, email="e@example.com")
        response = await _patch(client, project, customer_id, {"profile": {"first_name": "Ann"}})
        assert response.json()["version"] == 1


class TestIfMatch:
    async def test_stale_version_is_412_and_changes_nothing(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(client, project, email="v@example.com")
        fresh = await _patch(
            client, project, customer_id, {"profile": {"area": "East"}}, **{"If-Match": '"1"'}
        )
        assert fresh.status_code == 200
        stale = await _patch(
            client, project, customer_id, {"profile": {"area": "West"}}, **{"If-Match": '"1"'}
        )
        assert stale.status_code == 412
        current = await client.get(f"/v1/customers/{customer_id}", headers=project.admin_headers)
        assert current.json()["profile"]["area"] == "East"

    @pytest.mark.parametrize("header", ['W/"1"', "1", "*"])
    async def test_accepted_spellings(
        self, client: httpx.AsyncClient, project: ProjectWithKey, header: str
    ) -> None:
        customer_id = await _customer(client, project, email="s@example.com")
        response = await _patch(
            client, project, customer_id, {"profile": {"area": "South"}}, **{"If-Match": header}
        )
        assert response.status_code == 200

    async def test_garbage_is_412(self, client: httpx.AsyncClient, project: ProjectWithKey) -> None:
        customer_id = await _customer(client, project, email="g@example.com")
        response = await _patch(
            client, project, customer_id, {"profile": {"area": "x"}}, **{"If-Match": '"abc"'}
        )
        assert response.status_code == 412


class TestIdentifiers:
    async def test_replacing_email_keeps_the_old_one_in_history(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(client, project, email="old@example.com")
        response = await _patch(
            client, project, customer_id, {"identifiers": {"email": "NEW@example.com"}}
        )
        assert response.json()["identifiers"]["email"] == "new@example.com"
        history = await client.get(
            f"/v1/customers/{customer_id}/identifiers/history", headers=project.admin_headers
        )
        events = [(e["event"], e["value"], e["replaced_by"]) for e in history.json()["items"]]
        assert events[:2] == [
            ("added", "new@example.com", None),
            ("replaced", "old@example.com", "new@example.com"),
        ]

    async def test_cards_list_replaces_the_set(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(
            client, project, email="c@example.com", discount_cards=["A", "B"]
        )
        response = await _patch(
            client, project, customer_id, {"identifiers": {"discount_cards": ["B", "C"]}}
        )
        assert response.json()["identifiers"]["discount_cards"] == ["B", "C"]

    async def test_external_ids_set_and_remove(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await make_unique_id_field(client, project, "crm_id")
        customer_id = await _customer(client, project, email="x@example.com")
        added = await _patch(
            client, project, customer_id, {"identifiers": {"external": {"crm_id": "C1"}}}
        )
        assert added.json()["identifiers"]["external"] == {"crm_id": "C1"}
        removed = await _patch(
            client, project, customer_id, {"identifiers": {"external": {"crm_id": None}}}
        )
        assert removed.json()["identifiers"]["external"] == {}

    async def test_removing_the_last_identifier_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(client, project, email="last@example.com")
        response = await _patch(client, project, customer_id, {"identifiers": {"email": None}})
        assert response.status_code == 422
        kept = await client.get(f"/v1/customers/{customer_id}", headers=project.admin_headers)
        assert kept.json()["identifiers"]["email"] == "last@example.com"

    async def test_removing_one_of_two_is_fine(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(
            client, project, email="two@example.com", phone="+14155552671"
        )
        response = await _patch(client, project, customer_id, {"identifiers": {"phone": None}})
        assert response.status_code == 200
        assert response.json()["identifiers"]["phone"] is None

    async def test_taking_someone_elses_identifier_is_409(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await _customer(client, project, email="theirs@example.com")
        mine = await _customer(client, project, email="mine@example.com")
        response = await _patch(
            client, project, mine, {"identifiers": {"email": "theirs@example.com"}}
        )
        assert response.status_code == 409
        assert response.json()["errors"][0]["pointer"] == "/identifiers/email"

    async def test_blocklisted_value_is_422_in_a_patch(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        customer_id = await _customer(client, project, email="ok@example.com")
        response = await _patch(
            client, project, customer_id, {"identifiers": {"email": "test@test.com"}}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/identifiers/email"
