"""Defining, listing and reading custom fields over HTTP."""

from typing import Any

import httpx
import pytest

from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.factories import ProjectWithKey, bearer, make_key


async def _create(
    client: httpx.AsyncClient, project: ProjectWithKey, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/v1/fields", headers=project.admin_headers, json=body)


def _pointers(response: httpx.Response) -> set[str]:
    return {error["pointer"] for error in response.json()["errors"]}


class TestCreate:
    @pytest.mark.parametrize(
        "body",
        [
            {"key": "nickname", "type": "string"},
            {"key": "bio", "type": "string", "max_length": 10000},
            {"key": "shoe_size", "type": "integer"},
            {"key": "credit_limit", "type": "decimal"},
            {"key": "vip", "type": "boolean"},
            {"key": "wedding_day", "type": "date"},
            {"key": "last_call_at", "type": "datetime"},
            {"key": "tier", "type": "enum", "enum_values": ["bronze", "silver", "gold"]},
            {"key": "crm_id", "type": "unique_id", "label": "CRM id"},
        ],
    )
    async def test_each_type_is_created_and_readable(
        self, client: httpx.AsyncClient, project: ProjectWithKey, body: dict[str, Any]
    ) -> None:
        response = await _create(client, project, body)
        assert response.status_code == 201
        created = response.json()
        expected = {"entity": "customer", "label": None, "enum_values": None, "max_length": None}
        assert created == expected | body | {
            "id": created["id"],
            "created_at": created["created_at"],
        }

        shown = await client.get(f"/v1/fields/{body['key']}", headers=project.admin_headers)
        assert shown.status_code == 200
        assert shown.json() == created

    async def test_duplicate_key_is_409(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        assert (
            await _create(client, project, {"key": "tier", "type": "string"})
        ).status_code == 201
        second = await _create(client, project, {"key": "tier", "type": "integer"})
        assert second.status_code == 409
        assert second.json()["type"] == "urn:cdp:problem:conflict"

    async def test_same_key_in_another_project_is_fine(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        other_project: ProjectWithKey,
    ) -> None:
        body = {"key": "tier", "type": "string"}
        assert (await _create(client, project, body)).status_code == 201
        assert (await _create(client, other_project, body)).status_code == 201

    @pytest.mark.parametrize(
        "key", ["Tier", "1tier", "_tier", "tier-level", "tiér", "", "a" * 65, "tier\n"]
    )
    async def test_malformed_key_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey, key: str
    ) -> None:
        response = await _create(client, project, {"key": key, "type": "string"})
        assert response.status_code == 422
        assert _pointers(response) == {"/key"}

    async def test_longest_key_is_accepted(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await _create(client, project, {"key": "a" * 64, "type": "string"})
        assert response.status_code == 201

    @pytest.mark.parametrize(
        "key", ["email", "phone", "first_name", "customer_id", "external", "id"]
    )
    async def test_reserved_key_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey, key: str
    ) -> None:
        response = await _create(client, project, {"key": key, "type": "string"})
        assert response.status_code == 422
        assert response.json()["type"] == "urn:cdp:problem:validation-error"
        assert _pointers(response) == {"/key"}

    @pytest.mark.parametrize("enum_values", [None, []])
    async def test_enum_without_values_is_422(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        enum_values: list[str] | None,
    ) -> None:
        body = {"key": "tier", "type": "enum", "enum_values": enum_values}
        response = await _create(client, project, body)
        assert response.status_code == 422
        assert _pointers(response) == {"/enum_values"}

    async def test_duplicate_enum_values_are_422_at_each_repeat(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        body = {"key": "tier", "type": "enum", "enum_values": ["a", "b", "a", "a"]}
        response = await _create(client, project, body)
        assert response.status_code == 422
        assert _pointers(response) == {"/enum_values/2", "/enum_values/3"}

    async def test_values_on_a_non_enum_field_are_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        body = {"key": "tier", "type": "string", "enum_values": ["a"]}
        response = await _create(client, project, body)
        assert response.status_code == 422
        assert _pointers(response) == {"/enum_values"}

    @pytest.mark.parametrize("field_type", ["integer", "enum", "unique_id"])
    async def test_max_length_on_a_non_string_field_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey, field_type: str
    ) -> None:
        body = {"key": "tier", "type": field_type, "max_length": 10, "enum_values": ["a"]}
        if field_type != "enum":
            del body["enum_values"]
        response = await _create(client, project, body)
        assert response.status_code == 422
        assert _pointers(response) == {"/max_length"}

    @pytest.mark.parametrize("max_length", [0, 10001])
    async def test_max_length_out_of_range_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey, max_length: int
    ) -> None:
        body = {"key": "bio", "type": "string", "max_length": max_length}
        response = await _create(client, project, body)
        assert response.status_code == 422
        assert _pointers(response) == {"/max_length"}

    async def test_every_rule_broken_is_reported_at_once(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        body = {"key": "email", "type": "boolean", "enum_values": ["a"], "max_length": 5}
        response = await _create(client, project, body)
        assert response.status_code == 422
        assert _pointers(response) == {"/key", "/enum_values", "/max_length"}

    async def test_unknown_type_entity_and_extra_fields_are_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        body = {"key": "tier", "type": "money", "entity": "order", "colour": "red"}
        response = await _create(client, project, body)
        assert response.status_code == 422
        assert _pointers(response) == {"/type", "/entity", "/colour"}

    async def test_needs_the_admin_scope(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        token = await make_key(
            uow, project.project, scopes=[Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE]
        )
        body = {"key": "tier", "type": "string"}
        response = await client.post("/v1/fields", headers=bearer(token), json=body)
        assert response.status_code == 403
        listed = await client.get("/v1/fields", headers=project.admin_headers)
        assert listed.json()["items"] == []

    async def test_without_a_key_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/fields", json={"key": "tier", "type": "string"})
        assert response.status_code == 401


class TestListAndGet:
    async def test_list_is_cursor_paginated_in_creation_order(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        keys = [f"field_{number}" for number in range(5)]
        for key in keys:
            await _create(client, project, {"key": key, "type": "string"})

        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = await client.get("/v1/fields", headers=project.admin_headers, params=params)
            assert page.status_code == 200
            seen.extend(field["key"] for field in page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == keys

    async def test_list_filters_by_entity(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await _create(client, project, {"key": "tier", "type": "string"})
        listed = await client.get(
            "/v1/fields", headers=project.admin_headers, params={"entity": "customer"}
        )
        assert [field["key"] for field in listed.json()["items"]] == ["tier"]
        unknown = await client.get(
            "/v1/fields", headers=project.admin_headers, params={"entity": "order"}
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["location"] == "query"

    async def test_read_scope_may_list_and_get(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        await _create(client, project, {"key": "tier", "type": "string"})
        reader = bearer(await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ]))
        assert (await client.get("/v1/fields", headers=reader)).status_code == 200
        assert (await client.get("/v1/fields/tier", headers=reader)).status_code == 200

    async def test_list_and_get_need_the_read_scope(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        writer = bearer(await make_key(uow, project.project, scopes=[Scope.LOYALTY_WRITE]))
        assert (await client.get("/v1/fields", headers=writer)).status_code == 403
        assert (await client.get("/v1/fields/tier", headers=writer)).status_code == 403

    async def test_unknown_key_is_404(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.get("/v1/fields/nothing", headers=project.admin_headers)
        assert response.status_code == 404
        assert response.json()["type"] == "urn:cdp:problem:not-found"

    async def test_fields_are_immutable(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        await _create(client, project, {"key": "tier", "type": "string"})
        patched = await client.patch(
            "/v1/fields/tier", headers=project.admin_headers, json={"label": "x"}
        )
        deleted = await client.delete("/v1/fields/tier", headers=project.admin_headers)
        assert (patched.status_code, deleted.status_code) == (405, 405)


class TestTenancy:
    async def test_another_projects_field_is_invisible(
        self,
        client: httpx.AsyncClient,
        project: ProjectWithKey,
        other_project: ProjectWithKey,
    ) -> None:
        await _create(client, project, {"key": "tier", "type": "string"})

        shown = await client.get("/v1/fields/tier", headers=other_project.admin_headers)
        assert shown.status_code == 404
        listed = await client.get("/v1/fields", headers=other_project.admin_headers)
        assert listed.json() == {"items": [], "next_cursor": None}
