"""The committed spec is the app's spec; its operations are fit for client generators."""

import re
from pathlib import Path
from typing import Any

import pytest

from app.cli import render_openapi
from app.main import create_app
from app.settings import Settings

SPEC_PATH = Path(__file__).parents[1] / "openapi" / "openapi.json"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(log_level="WARNING")).openapi()


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path_item in spec["paths"].values()
        for method, operation in path_item.items()
        if method in HTTP_METHODS
    ]


def test_committed_spec_matches_the_app(spec: dict[str, Any]) -> None:
    assert SPEC_PATH.read_text() == render_openapi(spec), (
        "openapi/openapi.json is stale: run `cdp openapi` and commit the result"
    )


def test_operation_ids_are_unique_and_named_by_tag(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for operation in operations:
        [tag] = operation["tags"]
        assert re.fullmatch(r"[a-z_]+", operation["operationId"])
        assert operation["operationId"].startswith(tag.replace("-", "_") + "_")
        assert operation.get("description") or operation.get("summary")


def test_errors_are_documented_as_problem_json(spec: dict[str, Any]) -> None:
    # Under its own media type only: a generated client parses it into a `Problem`.
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"] == problem, (operation["operationId"], status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
    ]


def _expected_problems(method: str, operation: dict[str, Any]) -> set[str]:
    expected = {"500"}  # a bug, answered by the middleware
    if "security" in operation:
        # Key missing or lacking a scope, bad input, too many requests, database down.
        expected |= {"401", "403", "422", "429", "503"}
    if method in {"post", "put", "patch"}:
        expected |= {"408", "413", "415"}  # the request guard, before any route
    if "requestBody" in operation:
        expected.add("400")
    return expected


def test_every_operation_documents_the_problems_it_can_answer(spec: dict[str, Any]) -> None:
    checked = 0
    for path_item in spec["paths"].values():
        for method, operation in path_item.items():
            documented = set(operation["responses"])
            missing = _expected_problems(method, operation) - documented
            assert not missing, (operation["operationId"], sorted(missing))
            checked += 1
    assert checked == len(_operations(spec))
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]


def test_operations_on_one_resource_document_its_absence(spec: dict[str, Any]) -> None:
    for path, path_item in spec["paths"].items():
        if "{" not in path or path.startswith("/v1/me"):
            continue
        for operation in path_item.values():
            assert "404" in operation["responses"], operation["operationId"]


def test_request_bodies_carry_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for operation in _operations(spec):
        body = operation.get("requestBody")
        if body is None:
            continue
        # JSON, or multipart/form-data where an upload is taken.
        for content in body["content"].values():
            ref = content["schema"]["$ref"]
            assert schemas[ref.rsplit("/", 1)[1]].get("examples"), operation["operationId"]


def _referenced(node: Any, schemas: dict[str, Any], found: set[str]) -> set[str]:
    """Names of the component schemas `node` refers to, transitively."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref and (name := ref.rsplit("/", 1)[1]) not in found:
            found.add(name)
            _referenced(schemas[name], schemas, found)
        for value in node.values():
            _referenced(value, schemas, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, schemas, found)
    return found


def test_response_models_require_every_field_they_always_send(spec: dict[str, Any]) -> None:
    # A field absent from `required` is `Unset | X` in a generated client; the server
    # sends every field of its answers (null when empty), so clients should see `X | None`.
    schemas = spec["components"]["schemas"]
    inputs: set[str] = set()
    outputs: set[str] = set()
    for operation in _operations(spec):
        _referenced([operation.get("requestBody"), operation.get("parameters")], schemas, inputs)
        _referenced(operation["responses"], schemas, outputs)
    sometimes_absent = {("Problem", "errors")}  # only validation problems list errors
    for name in sorted(outputs - inputs):
        schema = schemas[name]
        optional = set(schema.get("properties", {})) - set(schema.get("required", []))
        assert {(name, field) for field in optional} <= sometimes_absent, name
