"""Every error path answers RFC 9457 problem+json, never a stack trace."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core import errors
from app.core.errors import DomainError, FieldError
from app.core.problems import PROBLEM_MEDIA_TYPE
from app.main import create_app
from app.settings import Settings
from tests.factories import ProjectWithKey
from tests.helpers import app_running, asgi_client

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}

ALL_DOMAIN_ERRORS = [
    errors.InvalidInput,
    errors.MalformedRequest,
    errors.Forbidden,
    errors.NotFound,
    errors.MethodNotAllowed,
    errors.Conflict,
    errors.IdentifierTaken,
    errors.PreconditionFailed,
    errors.PayloadTooLarge,
    errors.RequestTimeout,
    errors.UnsupportedMediaType,
    errors.ServiceUnavailable,
]


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert PROBLEM_KEYS <= body.keys()
    assert body["status"] == status
    assert str(body["type"]).startswith("urn:cdp:problem:")
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture(scope="module")
async def raising_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The real app plus test-only routes that raise each error class."""
    async with app_running(database_url) as app:

        @app.get("/test/raise/{name}")
        async def raise_named(name: str) -> None:
            error_class = next(e for e in ALL_DOMAIN_ERRORS if e.__name__ == name)
            raise error_class(f"{name} raised", errors=[FieldError(pointer="/a/0", message="bad")])

        @app.get("/test/crash")
        async def crash() -> None:
            raise RuntimeError("secret internal detail")

        yield app


@pytest.fixture
async def raising_client(raising_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(raising_app) as http:
        yield http


class TestDomainErrors:
    @pytest.mark.parametrize("error_class", ALL_DOMAIN_ERRORS, ids=lambda e: e.__name__)
    async def test_each_class_renders_its_status_and_type(
        self, raising_client: httpx.AsyncClient, error_class: type[DomainError]
    ) -> None:
        response = await raising_client.get(f"/test/raise/{error_class.__name__}")
        body = assert_problem(response, error_class.status_code)
        assert body["type"] == error_class.type_uri()
        assert body["title"] == error_class.title
        assert body["detail"] == f"{error_class.__name__} raised"
        assert body["errors"] == [{"location": "body", "pointer": "/a/0", "message": "bad"}]

    def test_every_error_class_is_covered(self) -> None:
        declared = {
            cls
            for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, DomainError) and cls is not DomainError
        }
        # Classes with their own constructors are exercised by real requests elsewhere.
        assert declared - set(ALL_DOMAIN_ERRORS) == {
            errors.Unauthenticated,
            errors.RetryLater,
            errors.RateLimited,
            errors.Overloaded,
        }

    async def test_unexpected_error_is_500_without_details(
        self, raising_client: httpx.AsyncClient
    ) -> None:
        response = await raising_client.get("/test/crash", headers={"X-Request-ID": "abc-123"})
        body = assert_problem(response, 500)
        assert body["request_id"] == "abc-123"
        assert "secret internal detail" not in response.text


class TestRoutingErrors:
    async def test_unknown_route_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/nothing-here"), 404)

    async def test_wrong_method_is_405_with_allow(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/healthz")
        assert_problem(response, 405)
        assert "GET" in response.headers["allow"]


class TestBodyErrors:
    async def test_invalid_json_is_400(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers | {"Content-Type": "application/json"},
            content=b'{"name": "x", ',
        )
        body = assert_problem(response, 400)
        assert body["type"] == "urn:cdp:problem:malformed-request"

    async def test_a_body_that_is_not_utf8_is_400_malformed(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        """Found by the spec fuzzing: it was a generic `http-error` problem."""
        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers | {"Content-Type": "application/json"},
            content=b"\xff\xfe{",
        )
        body = assert_problem(response, 400)
        assert body["type"] == "urn:cdp:problem:malformed-request"

    async def test_wrong_content_type_is_415(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers | {"Content-Type": "text/plain"},
            content=b"name=x",
        )
        assert_problem(response, 415)

    async def test_merge_patch_content_type_is_accepted(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.patch(
            "/v1/projects/current",
            headers=project.admin_headers | {"Content-Type": "application/merge-patch+json"},
            content=b'{"default_phone_region": "FR"}',
        )
        assert response.status_code == 200

    async def test_wrong_types_are_422_with_pointers(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/api-keys", headers=project.admin_headers, json={"name": 5, "scopes": "admin"}
        )
        body = assert_problem(response, 422)
        assert {e["pointer"] for e in body["errors"]} == {"/name", "/scopes"}  # type: ignore[attr-defined]

    async def test_a_body_that_is_not_an_object_is_422(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post("/v1/api-keys", headers=project.admin_headers, json=[1, 2])
        assert_problem(response, 422)

    def test_every_operation_with_a_body_documents_the_body_statuses(self) -> None:
        """Found by the spec fuzzing: broken JSON (400) and an oversized body (413) were
        answered by operations whose spec did not name those statuses."""
        spec = create_app(Settings(log_level="WARNING")).openapi()
        with_body = [
            (path, method, operation["responses"])
            for path, path_item in spec["paths"].items()
            for method, operation in path_item.items()
            if "requestBody" in operation
        ]
        assert len(with_body) >= 30  # every POST, PUT and PATCH that reads one
        for path, method, responses in with_body:
            for status in ("400", "408", "413", "415"):
                assert status in responses, f"{method.upper()} {path} lacks {status}"
                assert PROBLEM_MEDIA_TYPE in responses[status]["content"]


class TestBodyLimit:
    async def test_declared_oversized_body_is_413_before_auth(
        self, database_url: str, project: ProjectWithKey
    ) -> None:
        async with app_running(database_url, max_body_bytes=2048) as small:
            async with asgi_client(small) as http:
                response = await http.post(
                    "/v1/api-keys",
                    headers={"Content-Type": "application/json"},
                    content=b'{"name": "' + b"x" * 4096 + b'"}',
                )
        assert_problem(response, 413)

    async def test_streamed_oversized_body_is_413(
        self, database_url: str, project: ProjectWithKey
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(10):
                yield b"x" * 1024
            yield b'"}'

        async with app_running(database_url, max_body_bytes=2048) as small:
            async with asgi_client(small) as http:
                response = await http.post(
                    "/v1/api-keys",
                    headers=project.admin_headers | {"Content-Type": "application/json"},
                    content=chunks(),
                )
        assert_problem(response, 413)

    async def test_a_body_that_stalls_is_408_and_changes_nothing(
        self, database_url: str, project: ProjectWithKey, client: httpx.AsyncClient
    ) -> None:
        async def slow() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            await asyncio.sleep(1.0)
            yield b'late"}'

        async with app_running(database_url, body_timeout_seconds=0.2) as strict:
            async with asgi_client(strict) as http:
                response = await http.post(
                    "/v1/api-keys",
                    headers=project.admin_headers | {"Content-Type": "application/json"},
                    content=slow(),
                )
                on_time = await http.post(
                    "/v1/api-keys",
                    headers=project.admin_headers,
                    json={"name": "prompt", "scopes": ["customers:read"]},
                )
        assert_problem(response, 408)
        assert on_time.status_code == 201
        listed = await client.get("/v1/api-keys", headers=project.admin_headers)
        assert {key["name"] for key in listed.json()["items"]} == {"admin", "prompt"}

    async def test_default_limit_is_one_mebibyte(
        self, client: httpx.AsyncClient, project: ProjectWithKey
    ) -> None:
        response = await client.post(
            "/v1/api-keys",
            headers=project.admin_headers | {"Content-Type": "application/json"},
            content=b" " * (1024 * 1024 + 1),
        )
        assert_problem(response, 413)


class TestRequestId:
    async def test_client_request_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "req-42"})
        assert response.headers["x-request-id"] == "req-42"

    async def test_unsafe_request_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tabs"})
        assert response.headers["x-request-id"] != "bad id\twith tabs"
        assert len(response.headers["x-request-id"]) == 32
