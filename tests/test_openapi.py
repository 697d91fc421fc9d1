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
    for operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], operation["operationId"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


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
