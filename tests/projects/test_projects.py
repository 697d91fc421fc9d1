"""Projects through the API, and tenancy: a key never reaches another project."""

import uuid

import httpx

from tests.factories import ProjectWithKey, bearer


class TestProjects:
    async def test_create_returns_the_new_projects_admin_key(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/projects",
            headers=project.admin_headers,
            json={"name": "newco", "default_phone_region": "DE"},
        )
        assert response.status_code == 201
        created = response.json()
        assert created["default_phone_region"] == "DE"
        new_key = created["admin_key"]["key"]
        current = await client.get("/v1/projects/current", headers=bearer(new_key))
        assert current.json()["id"] == created["id"]

    async def test_duplicate_name_is_409(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/projects", headers=project.admin_headers, json={"name": "acme"}
        )
        assert response.status_code == 409

    async def test_invalid_name_and_region_are_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/projects",
            headers=project.admin_headers,
            json={"name": "Has Spaces", "default_phone_region": "germany"},
        )
        assert response.status_code == 422
        assert {e["pointer"] for e in response.json()["errors"]} == {
            "/name",
            "/default_phone_region",
        }

    async def test_update_current_settings(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.patch(
            "/v1/projects/current",
            headers=project.admin_headers,
            json={"default_phone_region": "GB"},
        )
        assert response.status_code == 200
        assert response.json()["default_phone_region"] == "GB"


class TestTenancy:
    async def test_listing_shows_only_the_callers_project_and_keys(
        self, client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
    ) -> None:
        projects = await client.get("/v1/projects", headers=project.admin_headers)
        assert [p["name"] for p in projects.json()["items"]] == ["acme"]
        keys = await client.get("/v1/api-keys", headers=other_project.admin_headers)
        assert {k["project_id"] for k in keys.json()["items"]} == {str(other_project.project.id)}

    async def test_another_projects_key_is_404_to_read_and_to_revoke(
        self, client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
    ) -> None:
        keys = await client.get("/v1/api-keys", headers=project.admin_headers)
        acme_key_id = keys.json()["items"][0]["id"]
        url = f"/v1/api-keys/{acme_key_id}"
        read = await client.get(url, headers=other_project.admin_headers)
        revoke = await client.delete(url, headers=other_project.admin_headers)
        assert (read.status_code, revoke.status_code) == (404, 404)
        still_works = await client.get("/v1/projects/current", headers=project.admin_headers)
        assert still_works.status_code == 200

    async def test_unknown_and_foreign_ids_look_the_same(
        self, client: httpx.AsyncClient, project: ProjectWithKey, other_project: ProjectWithKey
    ) -> None:
        keys = await client.get("/v1/api-keys", headers=project.admin_headers)
        foreign = await client.get(
            f"/v1/api-keys/{keys.json()['items'][0]['id']}", headers=other_project.admin_headers
        )
        unknown = await client.get(
            f"/v1/api-keys/{uuid.uuid4()}", headers=other_project.admin_headers
        )
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["title"] == unknown.json()["title"]


async def test_unsupported_phone_region_is_422(
    client: httpx.AsyncClient, project: ProjectWithKey
) -> None:
    response = await client.patch(
        "/v1/projects/current", headers=project.admin_headers, json={"default_phone_region": "XX"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/default_phone_region"
