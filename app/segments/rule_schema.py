"""The JSON Schema of the rule language, published in the OpenAPI spec as `SegmentRule`.

It describes the shape a generated client should build; names the schema cannot know
(custom fields, point accounts, action types, segments) and value types are checked by
`rules.compile_rule` when a rule is saved, which answers 422 with a pointer. The enums
come from the compiler's own constants so the two cannot drift apart, or are the API's
own components where the values are the same (tests/segments/test_rule_schema.py checks).
"""

from typing import Any

from pydantic import WithJsonSchema

from app.segments.rules import (
    COUNT_OPS,
    MAX_DEPTH,
    ORDER_OPS,
    TEXT_FIELDS,
    TEXT_OPS,
)

SCHEMA_NAME = "SegmentRule"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_RULE = _ref(SCHEMA_NAME)
# Enums several conditions share are components of their own, so that a generated client
# has one class for each; channels, consent statuses and device kinds are the API's own
# (a test checks they hold the compiler's values).
_OPERATORS: dict[str, dict[str, Any]] = {
    "ComparisonOperator": {"type": "string", "enum": sorted(TEXT_OPS | ORDER_OPS)},
    "CountOperator": {"type": "string", "enum": sorted(COUNT_OPS)},
    "PresenceOperator": {"type": "string", "enum": ["exists", "not_exists"]},
}


def _condition(title: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_COMPARED_VALUE: dict[str, Any] = {
    "description": "Absent for exists/not_exists; a list for in/not_in; else a scalar",
}

_ALTERNATIVES: list[dict[str, Any]] = [
    _condition("AllRule", {"all": {"type": "array", "items": _RULE, "minItems": 1}}, ["all"]),
    _condition("AnyRule", {"any": {"type": "array", "items": _RULE, "minItems": 1}}, ["any"]),
    _condition("NotRule", {"not": _RULE}, ["not"]),
    _condition(
        "ProfileCondition",
        {
            "profile": {"type": "string", "enum": [*TEXT_FIELDS, "birth_date", "created_at"]},
            "op": _ref("ComparisonOperator"),
            "value": _COMPARED_VALUE,
        },
        ["profile", "op"],
    ),
    _condition(
        "CustomFieldCondition",
        {
            "custom_field": {"type": "string", "description": "A custom field's key"},
            "op": _ref("ComparisonOperator"),
            "value": _COMPARED_VALUE,
        },
        ["custom_field", "op"],
    ),
    _condition(
        "IdentifierCondition",
        {
            "identifier": {
                "type": "string",
                "description": "email, phone, discount_card, app_installation, "
                "push_token, or external:<unique-id field key>",
            },
            "op": _ref("PresenceOperator"),
        },
        ["identifier", "op"],
    ),
    _condition(
        "SubscriptionCondition",
        {
            "subscription": {
                "type": "object",
                "properties": {
                    "channel": _ref("Channel"),
                    "topic": {"type": "string"},
                },
                "required": ["channel"],
                "additionalProperties": False,
            },
            "status": _ref("SubscriptionStatus"),
        },
        ["subscription", "status"],
    ),
    _condition(
        "PointsCondition",
        {
            "points": {"type": "string", "description": "A point account's key"},
            "op": _ref("CountOperator"),
            "value": {"type": "number"},
        },
        ["points", "op", "value"],
    ),
    _condition(
        "ActionCondition",
        {
            "action": {"type": "string", "description": "An action type's key"},
            "count": {
                "type": "object",
                "properties": {"op": _ref("CountOperator"), "value": {"type": "integer"}},
                "required": ["op", "value"],
                "additionalProperties": False,
            },
            "within_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        },
        ["action", "count"],
    ),
    _condition(
        "DeviceCondition",
        {
            "device": _ref("DeviceKind"),
            "op": _ref("PresenceOperator"),
            "push_enabled": {"type": "boolean"},
        },
        ["device", "op"],
    ),
    _condition(
        "InSegmentCondition",
        {
            "in_segment": {
                "type": "object",
                "properties": {
                    "segmentation": {"type": "string"},
                    "segment": {"type": "string"},
                },
                "required": ["segmentation", "segment"],
                "additionalProperties": False,
            }
        },
        ["in_segment"],
    ),
]

# Each alternative is a component of its own, named by its title: generators cannot
# build a class for an inline object that refers back to the union containing it.
SEGMENT_RULE_SCHEMAS: dict[str, dict[str, Any]] = {
    SCHEMA_NAME: {
        "title": SCHEMA_NAME,
        "description": (
            "A condition over one customer. Combinators nest at most "
            f"{MAX_DEPTH} deep. See docs/api.md for each condition's meaning."
        ),
        "oneOf": [{"$ref": f"#/components/schemas/{alt['title']}"} for alt in _ALTERNATIVES],
    },
    **{alt["title"]: alt for alt in _ALTERNATIVES},
    **_OPERATORS,
}

# Used on the request and response fields that carry a rule: their schema is a
# reference to the component above instead of an opaque object.
RULE_REFERENCE = WithJsonSchema(_RULE)
