"""The published `SegmentRule` JSON Schema accepts every rule the compiler accepts in the
rule-language table, and rejects malformed shapes, so generated clients can trust it."""

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from app.main import create_app
from app.segments import rules
from app.settings import Settings
from tests.segments.test_segments import RULES


def _validator() -> Draft202012Validator:
    spec = create_app(Settings(log_level="WARNING")).openapi()
    document = Resource.from_contents(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", **spec}
    )
    registry: Registry[Any] = Registry().with_resource("urn:openapi", document)
    return Draft202012Validator(
        {"$ref": "urn:openapi#/components/schemas/SegmentRule"}, registry=registry
    )


def test_every_rule_of_the_language_table_fits_the_schema() -> None:
    validator = _validator()
    for rule, _ in RULES:
        errors = [e.message for e in validator.iter_errors(rule)]
        assert errors == [], rule


@pytest.mark.parametrize(
    "rule",
    [
        {},
        {"all": []},
        {"not": {"profile": "gender"}},
        {"profile": "shoe_size", "op": "eq", "value": "42"},
        {"points": "bonus", "op": "contains", "value": 1},
        {"action": "purchase", "count": {"op": "gte", "value": 2}, "within_days": 0},
        {"subscription": {"channel": "fax"}, "status": "subscribed"},
        {"device": "mobile_app", "op": "exists", "color": "red"},
    ],
)
def test_malformed_rules_do_not_fit_the_schema(rule: dict[str, Any]) -> None:
    assert not _validator().is_valid(rule)


def test_the_api_enums_a_rule_refers_to_hold_the_compiler_s_values() -> None:
    schemas = create_app(Settings(log_level="WARNING")).openapi()["components"]["schemas"]
    assert schemas["Channel"]["enum"] == list(rules.CHANNELS)
    assert schemas["SubscriptionStatus"]["enum"] == list(rules.STATUSES)
    assert set(schemas["DeviceKind"]["enum"]) == {"mobile_app", "web_push"}
