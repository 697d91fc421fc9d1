"""The profile changelog and the ID changelog: what they record, and that they are append-only."""

from typing import Any

import asyncpg
import httpx
import pytest

from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, bearer, identify, make_key


async def _changelog(
    client: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str
) -> list[Any]:
    response = await client.get(
        f"/v1/customers/{customer_id}/changelog", headers=owner.admin_headers, params={"limit": 100}
    )
    assert response.status_code == 200
    items: list[Any] = response.json()["items"]
    return items


class TestProfileChangelog:
    async def test_create_records_every_field_and_identifier(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await identify(
            client,
            project,
            {
                "identifiers": {"email": "log@example.com"},
                "profile": {"first_name": "Lo", "time_zone": "Europe/Berlin"},
            },
        )
        customer_id = response.json()["customer"]["id"]
        rows = await _changelog(client, project, customer_id)
        assert {(r["operation"], r["field"], r["new_value"]) for r in rows} == {
            ("create", "first_name", "Lo"),
            ("create", "time_zone", "Europe/Berlin"),
            ("identifier_added", "email", "log@example.com"),
        }
        assert {r["touchpoint"] for r in rows} == {"admin"}
        assert {r["initiator"] for r in rows} == {"admin"}
        assert all(r["request_id"] for r in rows)

    async def test_update_records_one_row_per_changed_field_none_when_unchanged(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        created = await identify(
            client, project, {"identifiers": {"email": "u@example.com"}, "profile": {"area": "A"}}
        )
        customer_id = created.json()["customer"]["id"]
        before = len(await _changelog(client, project, customer_id))
        await client.patch(
            f"/v1/customers/{customer_id}",
            headers=project.admin_headers | {"X-Request-ID": "req-patch-1"},
            json={"profile": {"area": "B", "last_name": "New"}},
        )
        await client.patch(
            f"/v1/customers/{customer_id}",
            headers=project.admin_headers,
            json={"profile": {"area": "B"}},
        )
        rows = await _changelog(client, project, customer_id)
        assert len(rows) == before + 2
        newest = {
            (r["operation"], r["field"], r["old_value"], r["new_value"], r["request_id"])
            for r in rows[:2]
        }
        assert newest == {
            ("update", "area", "A", "B", "req-patch-1"),
            ("update", "last_name", None, "New", "req-patch-1"),
        }

    async def test_identifier_replace_and_reassign_are_recorded(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        first = await identify(
            client, project, {"identifiers": {"email": "r1@example.com", "discount_cards": ["R1"]}}
        )
        second = await identify(
            client, project, {"identifiers": {"email": "r2@example.com", "discount_cards": ["R2"]}}
        )
        first_id, second_id = first.json()["customer"]["id"], second.json()["customer"]["id"]
        await identify(
            client,
            project,
            {
                "identifiers": {"discount_cards": ["R1"], "email": "r2@example.com"},
                "on_conflict": "reassign",
            },
        )
        target_ops = {
            (r["operation"], r["field"], r["old_value"], r["new_value"])
            for r in await _changelog(client, project, first_id)
        }
        source_ops = {
            (r["operation"], r["field"], r["old_value"], r["new_value"])
            for r in await _changelog(client, project, second_id)
        }
        assert ("identifier_replaced", "email", "r1@example.com", "r2@example.com") in target_ops
        assert ("identifier_moved_in", "email", None, "r2@example.com") in target_ops
        assert ("identifier_moved_out", "email", "r2@example.com", None) in source_ops

    async def test_touchpoint_header_is_recorded_when_the_key_allows_it(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        created = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers,
            json={
                "name": "pos",
                "scopes": ["customers:write", "customers:read"],
                "touchpoint": "store-1",
                "allowed_touchpoints": ["store-2"],
            },
        )
        key = bearer(created.json()["key"])
        allowed = await client.post(
            "/v1/customers/identify",
            headers=key | {"X-Touchpoint": "store-2"},
            json={"identifiers": {"email": "tp@example.com"}},
        )
        assert allowed.status_code == 201
        refused = await client.post(
            "/v1/customers/identify",
            headers=key | {"X-Touchpoint": "web"},
            json={"identifiers": {"email": "tp2@example.com"}},
        )
        assert refused.status_code == 403
        rows = await _changelog(client, project, allowed.json()["customer"]["id"])
        assert {(r["touchpoint"], r["initiator"]) for r in rows} == {("store-2", "pos")}

    async def test_reading_needs_a_scope_and_writing_another(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        reader = bearer(await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ]))
        write = await client.post(
            "/v1/customers/identify",
            headers=reader,
            json={"identifiers": {"email": "r@example.com"}},
        )
        assert write.status_code == 403
        read = await client.get("/v1/customers", headers=reader)
        assert read.status_code == 200


@pytest.mark.parametrize("table", ["profile_changelog", "identifier_history"])
async def test_history_tables_refuse_update_and_delete(
    client: httpx.AsyncClient, project: ProjectWithKey, database_url: str, table: str
) -> None:
    await identify(client, project, {"identifiers": {"email": "ao@example.com"}})
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        assert await connection.fetchval(f"SELECT count(*) FROM {table}") > 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(f"UPDATE {table} SET touchpoint = 'forged'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(f"DELETE FROM {table}")
        assert (
            await connection.fetchval(f"SELECT count(*) FROM {table} WHERE touchpoint = 'forged'")
            == 0
        )
    finally:
        await connection.close()
