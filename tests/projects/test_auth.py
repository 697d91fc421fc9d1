"""API-key authentication and scopes, through real requests."""

import httpx
import pytest

from app.core.auth import Scope
from app.core.db import UnitOfWork
from tests.factories import ProjectWithKey, bearer, make_key, make_project
from tests.helpers import app_running, asgi_client

PROBLEM = "application/problem+json"


async def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


class TestAuthentication:
    async def test_missing_key_is_401_with_challenge(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/api-keys")
        body = await _problem(response, 401)
        assert body["type"] == "urn:cdp:problem:unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer nonsense",
            "Bearer cdp_short_x",
            "Bearer cdp_0123456789ab_wrongsecret",
            "Basic dXNlcjpwYXNz",
            "Bearer ",
        ],
    )
    async def test_malformed_or_unknown_key_is_401(
        self, client: httpx.AsyncClient, project: ProjectWithKey, header: str
    ) -> None:
        response = await client.get("/v1/api-keys", headers={"Authorization": header})
        await _problem(response, 401)

    async def test_right_prefix_wrong_secret_is_401(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        prefix = project.admin_token.split("_")[1]
        forged = f"cdp_{prefix}_{'0' * 48}"
        await _problem(await client.get("/v1/api-keys", headers=bearer(forged)), 401)

    async def test_valid_key_is_accepted_and_marks_last_use(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.get("/v1/api-keys", headers=project.admin_headers)
        assert response.status_code == 200
        [admin_key] = response.json()["items"]
        assert admin_key["last_used_at"] is not None

    async def test_revoked_key_is_401_from_the_next_request(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        token = await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ], name="temp")
        assert (await client.get("/v1/projects/current", headers=bearer(token))).status_code == 200
        listing = await client.get("/v1/api-keys", headers=project.admin_headers)
        temp_id = next(k["id"] for k in listing.json()["items"] if k["name"] == "temp")
        revoked = await client.delete(f"/v1/api-keys/{temp_id}", headers=project.admin_headers)
        assert revoked.status_code == 204
        body = await _problem(await client.get("/v1/projects/current", headers=bearer(token)), 401)
        assert "revoked" in str(body["detail"])

    async def test_expired_key_is_401(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        created = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers,
            json={
                "name": "old",
                "scopes": ["customers:read"],
                "expires_at": "2020-01-01T00:00:00Z",
            },
        )
        assert created.status_code == 201
        response = await client.get("/v1/projects/current", headers=bearer(created.json()["key"]))
        body = await _problem(response, 401)
        assert "expired" in str(body["detail"])


class TestScopes:
    async def test_missing_scope_is_403(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        reader = await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ])
        body = await _problem(await client.get("/v1/api-keys", headers=bearer(reader)), 403)
        assert body["type"] == "urn:cdp:problem:forbidden"
        assert "admin" in str(body["detail"])

    async def test_any_valid_key_reads_its_own_project(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        reader = await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ])
        response = await client.get("/v1/projects/current", headers=bearer(reader))
        assert response.status_code == 200
        assert response.json()["name"] == "acme"

    async def test_forbidden_write_changes_nothing(
        self, client: httpx.AsyncClient, project: ProjectWithKey, uow: UnitOfWork
    ) -> None:
        reader = await make_key(uow, project.project, scopes=[Scope.CUSTOMERS_READ])
        response = await client.post(
            "/v1/api-keys", headers=bearer(reader), json={"name": "x", "scopes": ["admin"]}
        )
        await _problem(response, 403)
        listing = await client.get("/v1/api-keys", headers=project.admin_headers)
        assert {k["name"] for k in listing.json()["items"]} == {"admin", "worker"}


class TestRateLimit:
    async def test_over_the_rate_is_429_with_retry_after(self, database_url: str) -> None:

        async with app_running(
            database_url, rate_limit_per_second=0.01, rate_limit_burst=2
        ) as limited:
            created = await make_project(UnitOfWork(limited.state.database.sessions), name="rl")
            async with asgi_client(limited) as http:
                statuses = [
                    (await http.get("/v1/projects/current", headers=created.admin_headers))
                    for _ in range(3)
                ]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        body = await _problem(statuses[2], 429)
        assert body["type"] == "urn:cdp:problem:rate-limited"
        assert int(statuses[2].headers["retry-after"]) >= 1

    async def test_each_key_has_its_own_bucket_and_a_refused_write_changes_nothing(
        self, database_url: str
    ) -> None:
        async with app_running(
            database_url, rate_limit_per_second=0.01, rate_limit_burst=1
        ) as limited:
            uow = UnitOfWork(limited.state.database.sessions)
            created = await make_project(uow, name="rl2")
            other_key = bearer(
                await make_key(uow, created.project, scopes=[Scope.CUSTOMERS_WRITE], name="b")
            )
            body = {"identifiers": {"email": "limited@example.com"}}
            async with asgi_client(limited) as http:
                first = await http.get("/v1/projects/current", headers=created.admin_headers)
                refused = await http.post(
                    "/v1/customers/identify", headers=created.admin_headers, json=body
                )
                other = await http.post("/v1/customers/identify", headers=other_key, json=body)
                again = await http.post("/v1/customers/identify", headers=other_key, json=body)
        assert first.status_code == 200
        await _problem(refused, 429)
        # The other key's bucket is untouched: its first write creates the customer (201),
        # so the refused one before it wrote nothing.
        assert other.status_code == 201, other.text
        await _problem(again, 429)
