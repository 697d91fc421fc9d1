"""Payload schemas of action types: checked when declared, compiled once, applied on ingest.

Schemas are JSON Schema, draft 2020-12. A schema may only reference itself: every `$ref`
must resolve inside the document when it is declared, and the compiled validator's
registry refuses to retrieve anything, so validating a payload never reaches the network.
Compiled validators are cached per process by (project, type, version); replacing a
schema moves the version, so a stale validator is never used, in any worker.
"""

import uuid
from collections import OrderedDict
from collections.abc import Iterator
from itertools import islice
from typing import Any, NoReturn

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from app.core.errors import FieldError
from app.core.json_size import json_size
from app.core.problems import json_pointer

SCHEMA_MAX_BYTES = 64 * 1024
PAYLOAD_MAX_BYTES = 64 * 1024
# A payload of 64 KiB can break a schema thousands of times; the first ones tell enough.
MAX_REPORTED_ERRORS = 100
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")
# Keywords whose values are data, not subschemas: a "$ref" inside them is just a string.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
_META_VALIDATOR = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


def _refuse_retrieval(uri: str) -> NoReturn:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs __init__, unseen by mypy


_LOCAL_ONLY: Registry[Any] = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def schema_errors(schema: Any, pointer: str) -> list[FieldError]:
    """Everything wrong with a payload schema, each at its place inside `pointer`."""
    try:
        size = json_size(schema)
    except ValueError as error:
        return [FieldError(pointer, str(error))]
    if size > SCHEMA_MAX_BYTES:
        return [FieldError(pointer, f"A payload schema may have at most {SCHEMA_MAX_BYTES} bytes.")]
    if not isinstance(schema, dict | bool):
        return [FieldError(pointer, "A JSON Schema is an object (or true / false).")]
    found = [
        FieldError(pointer + json_pointer(list(error.absolute_path)), error.message)
        for error in islice(_META_VALIDATOR.iter_errors(schema), MAX_REPORTED_ERRORS)
    ]
    if found or isinstance(schema, bool):
        return found
    dialect = schema.get("$schema", DIALECT)
    if dialect != DIALECT:
        return [FieldError(f"{pointer}/$schema", f"Only draft 2020-12 ({DIALECT}) is supported.")]
    return list(islice(_reference_errors(schema, pointer), MAX_REPORTED_ERRORS))


def _reference_errors(schema: dict[str, Any], pointer: str) -> Iterator[FieldError]:
    root: Resource[Any] = DRAFT202012.create_resource(schema)
    resolver = _LOCAL_ONLY.resolver_with_root(root)
    pending: list[tuple[Any, list[str | int], Any]] = [(schema, [], resolver)]
    while pending:
        node, path, scope = pending.pop()
        if isinstance(node, list):
            pending.extend((item, [*path, i], scope) for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if path and isinstance(node.get("$id"), str):
            # A nested $id starts a resource of its own: its references resolve against it.
            scope = scope.in_subresource(DRAFT202012.create_resource(node))
        for keyword in _REFERENCE_KEYWORDS:
            reference = node.get(keyword)
            if isinstance(reference, str):
                try:
                    scope.lookup(reference)
                except Unresolvable:
                    yield FieldError(
                        pointer + json_pointer([*path, keyword]),
                        "References must point inside this schema; "
                        f"{reference!r} does not resolve.",
                    )
        pending.extend(
            (value, [*path, key], scope) for key, value in node.items() if key not in _DATA_KEYWORDS
        )


def compile_schema(schema: Any) -> Validator:
    return Draft202012Validator(schema, registry=_LOCAL_ONLY)


def payload_errors(validator: Validator, payload: Any, pointer: str) -> list[FieldError]:
    """Every way the payload breaks its schema (the first MAX_REPORTED_ERRORS), by pointer."""
    errors = [
        FieldError(pointer + json_pointer(list(error.absolute_path)), error.message)
        for error in islice(validator.iter_errors(payload), MAX_REPORTED_ERRORS)
    ]
    return sorted(errors, key=lambda error: error.pointer)


class ValidatorCache:
    """Compiled validators per (project, type key, version), least recently used dropped."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: OrderedDict[tuple[uuid.UUID, str, int], Validator] = OrderedDict()
        self._max_entries = max_entries

    def get(self, project_id: uuid.UUID, key: str, version: int) -> Validator | None:
        entry = (project_id, key, version)
        found = self._entries.get(entry)
        if found is not None:
            self._entries.move_to_end(entry)
        return found

    def put(self, project_id: uuid.UUID, key: str, version: int, schema: Any) -> Validator:
        validator = compile_schema(schema)
        self._entries[(project_id, key, version)] = validator
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return validator
