"""Creating, listing, reading and revoking API keys."""

import httpx

from tests.factories import ProjectWithKey, bearer


class TestCreateKey:
    async def test_key_is_shown_once_and_works(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers,
            json={"name": "checkout", "scopes": ["customers:read"], "touchpoint": "web-shop"},
        )
        assert response.status_code == 201
        created = response.json()
        assert created["key"].startswith(f"cdp_{created['prefix']}_")
        assert created["touchpoint"] == "web-shop"
        assert created["scopes"] == ["customers:read"]

        shown = await client.get(f"/v1/api-keys/{created['id']}", headers=project.admin_headers)
        assert shown.status_code == 200
        assert "key" not in shown.json()
        usable = await client.get("/v1/projects/current", headers=bearer(created["key"]))
        assert usable.status_code == 200

    async def test_touchpoint_defaults_to_name(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers,
            json={"name": "crm-sync", "scopes": ["customers:write"]},
        )
        assert response.json()["touchpoint"] == "crm-sync"

    async def test_secret_is_not_stored(
        self, client: httpx.AsyncClient, project: ProjectWithKey, database_url: str
    ) -> None:
        import asyncpg

        from tests.conftest import _asyncpg_dsn

        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers,
            json={"name": "n", "scopes": ["customers:read"]},
        )
        secret = response.json()["key"].split("_", 2)[2]
        connection = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            dump = await connection.fetchval("SELECT string_agg(t::text, '|') FROM api_keys t")
        finally:
            await connection.close()
        assert secret not in dump

    async def test_duplicate_live_name_is_409_revoked_name_is_reusable(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        body = {"name": "dup", "scopes": ["customers:read"]}
        first = await client.post("/v1/api-keys", headers=project.admin_headers, json=body)
        second = await client.post("/v1/api-keys", headers=project.admin_headers, json=body)
        assert second.status_code == 409
        assert second.json()["type"] == "urn:cdp:problem:conflict"
        await client.delete(f"/v1/api-keys/{first.json()['id']}", headers=project.admin_headers)
        third = await client.post("/v1/api-keys", headers=project.admin_headers, json=body)
        assert third.status_code == 201

    async def test_invalid_scope_and_missing_fields_are_422_with_pointers(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers,
            json={"scopes": ["customers:read", "root"], "extra": 1},
        )
        assert response.status_code == 422
        pointers = {e["pointer"] for e in response.json()["errors"]}
        assert pointers == {"/name", "/scopes/1", "/extra"}


class TestListAndRevoke:
    async def test_list_is_cursor_paginated_and_hides_revoked(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        ids = []
        for number in range(5):
            created = await client.post(
                "/v1/api-keys",
                headers=project.admin_headers,
                json={"name": f"k{number}", "scopes": ["customers:read"]},
            )
            ids.append(created.json()["id"])
        await client.delete(f"/v1/api-keys/{ids[0]}", headers=project.admin_headers)

        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = await client.get("/v1/api-keys", headers=project.admin_headers, params=params)
            assert page.status_code == 200
            seen.extend(k["name"] for k in page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == ["admin", "k1", "k2", "k3", "k4"]

        everything = await client.get(
            "/v1/api-keys", headers=project.admin_headers, params={"include_revoked": True}
        )
        assert len(everything.json()["items"]) == 6

    async def test_revoke_is_idempotent_and_keeps_first_instant(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        created = await client.post(
            "/v1/api-keys", headers=project.admin_headers, json={"name": "r", "scopes": ["admin"]}
        )
        key_id = created.json()["id"]
        url = f"/v1/api-keys/{key_id}"
        assert (await client.delete(url, headers=project.admin_headers)).status_code == 204
        first = (await client.get(url, headers=project.admin_headers)).json()["revoked_at"]
        assert (await client.delete(url, headers=project.admin_headers)).status_code == 204
        again = (await client.get(url, headers=project.admin_headers)).json()["revoked_at"]
        assert first is not None
        assert first == again

    async def test_bad_cursor_is_422_pointing_at_the_query(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.get(
            "/v1/api-keys", headers=project.admin_headers, params={"cursor": "!!not-a-cursor"}
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"location": "query", "pointer": "/cursor", "message": "Invalid cursor"}
        ]

    async def test_limit_over_1000_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.get(
            "/v1/api-keys", headers=project.admin_headers, params={"limit": 1001}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["location"] == "query"
