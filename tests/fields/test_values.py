"""validate_custom_values: every type, valid and invalid, all errors at once."""

import pytest

from app.core.errors import FieldError, InvalidInput
from app.fields.values import (
    FieldDefinition,
    FieldDefinitions,
    FieldType,
    unique_id_keys,
    validate_custom_values,
)

DEFINITIONS: FieldDefinitions = {
    definition.key: definition
    for definition in [
        FieldDefinition(key="nickname", type=FieldType.STRING),
        FieldDefinition(key="initials", type=FieldType.STRING, max_length=3),
        FieldDefinition(key="shoe_size", type=FieldType.INTEGER),
        FieldDefinition(key="credit", type=FieldType.DECIMAL),
        FieldDefinition(key="vip", type=FieldType.BOOLEAN),
        FieldDefinition(key="wedding_day", type=FieldType.DATE),
        FieldDefinition(key="called_at", type=FieldType.DATETIME),
        FieldDefinition(key="tier", type=FieldType.ENUM, enum_values=("bronze", "gold")),
        FieldDefinition(key="crm_id", type=FieldType.UNIQUE_ID),
    ]
}


def _errors(values: dict[str, object], **options: str) -> list[FieldError]:
    with pytest.raises(InvalidInput) as raised:
        validate_custom_values(values, DEFINITIONS, **options)
    return raised.value.errors


def _message(key: str, value: object) -> str:
    [error] = _errors({key: value})
    assert error.pointer == f"/profile/custom_fields/{key}"
    assert error.location == "body"
    return error.message


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("nickname", "", ""),
        ("nickname", "Ann", "Ann"),
        ("nickname", "x" * 1000, "x" * 1000),
        ("initials", "ABC", "ABC"),
        ("shoe_size", 42, 42),
        ("shoe_size", -(2**63), -(2**63)),
        ("shoe_size", 2**63 - 1, 2**63 - 1),
        ("credit", "12.50", "12.50"),
        ("credit", "-0.001", "-0.001"),
        ("credit", "+7", "7"),
        ("credit", "1.5e3", "1500"),
        ("credit", "1E-2", "0.01"),
        ("credit", "-0.00", "0.00"),
        (
            "credit",
            "12345678901234567890.123456789012345678",
            "12345678901234567890.123456789012345678",
        ),
        ("credit", 12, "12"),
        ("credit", 0.1, "0.1"),
        ("credit", 2.5, "2.5"),
        ("credit", 1e20, "100000000000000000000"),
        ("vip", True, True),
        ("vip", False, False),
        ("wedding_day", "2024-02-29", "2024-02-29"),
        ("called_at", "2024-05-01T12:30:00Z", "2024-05-01T12:30:00Z"),
        ("called_at", "2024-05-01T14:30:00+02:00", "2024-05-01T12:30:00Z"),
        ("called_at", "2024-05-01 07:00:00.25-05:30", "2024-05-01T12:30:00.250000Z"),
        ("called_at", "2024-05-01t12:30:00z", "2024-05-01T12:30:00Z"),
        ("called_at", "2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00Z"),
        ("tier", "gold", "gold"),
    ],
)
def test_valid_values_are_normalised(key: str, value: object, stored: object) -> None:
    assert validate_custom_values({key: value}, DEFINITIONS) == {key: stored}


@pytest.mark.parametrize("key", sorted(DEFINITIONS.keys() - {"crm_id"}))
def test_none_is_kept_to_mean_remove(key: str) -> None:
    assert validate_custom_values({key: None}, DEFINITIONS) == {key: None}


def test_nothing_to_validate_is_nothing_to_store() -> None:
    assert validate_custom_values({}, DEFINITIONS) == {}
    assert validate_custom_values({}, {}) == {}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("nickname", 5, "Must be a string"),
        ("nickname", ["a"], "Must be a string"),
        ("nickname", "x" * 1001, "Must be at most 1000 characters long"),
        ("initials", "ABCD", "Must be at most 3 characters long"),
        ("shoe_size", "42", "Must be an integer"),
        ("shoe_size", 42.0, "Must be an integer"),
        ("shoe_size", True, "Must be an integer"),
        ("shoe_size", 2**63, "Must fit in a signed 64-bit integer"),
        ("shoe_size", -(2**63) - 1, "Must fit in a signed 64-bit integer"),
        ("credit", True, "Must be a number or a decimal string"),
        ("credit", "abc", "Must be a number or a decimal string"),
        ("credit", "NaN", "Must be a number or a decimal string"),
        ("credit", "Infinity", "Must be a number or a decimal string"),
        ("credit", "1_000", "Must be a number or a decimal string"),
        ("credit", " 1", "Must be a number or a decimal string"),
        ("credit", "1,5", "Must be a number or a decimal string"),
        ("credit", "\u0661\u0662", "Must be a number or a decimal string"),
        ("credit", {"amount": 1}, "Must be a number or a decimal string"),
        ("credit", float("inf"), "Must be a finite number"),
        ("credit", float("nan"), "Must be a finite number"),
        (
            "credit",
            "1e999999999",
            "Must have at most 38 digits before and 18 after the decimal point",
        ),
        (
            "credit",
            "0.0000000000000000001",
            "Must have at most 38 digits before and 18 after the decimal point",
        ),
        ("vip", 1, "Must be true or false"),
        ("vip", "true", "Must be true or false"),
        ("wedding_day", "2023-02-29", "Must be a valid calendar date"),
        ("wedding_day", "20240131", "Must be a date as YYYY-MM-DD"),
        ("wedding_day", "2024-W01-1", "Must be a date as YYYY-MM-DD"),
        ("wedding_day", "2024-01-31T00:00:00Z", "Must be a date as YYYY-MM-DD"),
        ("wedding_day", 20240131, "Must be a date as YYYY-MM-DD"),
        (
            "called_at",
            "2024-05-01T12:30:00",
            "Must be an RFC 3339 date-time with a UTC offset, e.g. 2024-05-01T12:30:00Z",
        ),
        (
            "called_at",
            "2024-05-01",
            "Must be an RFC 3339 date-time with a UTC offset, e.g. 2024-05-01T12:30:00Z",
        ),
        (
            "called_at",
            "2024-05-01T12:30Z",
            "Must be an RFC 3339 date-time with a UTC offset, e.g. 2024-05-01T12:30:00Z",
        ),
        (
            "called_at",
            1714566600,
            "Must be an RFC 3339 date-time with a UTC offset, e.g. 2024-05-01T12:30:00Z",
        ),
        ("called_at", "2024-05-01T25:00:00Z", "Must be a valid date-time"),
        ("called_at", "0001-01-01T00:00:00+01:00", "Must be a valid date-time"),
        ("tier", "silver", "Must be one of: 'bronze', 'gold'"),
        ("tier", "Gold", "Must be one of: 'bronze', 'gold'"),
        ("tier", 1, "Must be one of: 'bronze', 'gold'"),
        ("crm_id", "C-1", "unique_id fields are identifiers; send them in identifiers.external"),
        ("crm_id", None, "unique_id fields are identifiers; send them in identifiers.external"),
        ("unknown", "x", "Unknown custom field"),
        ("unknown", None, "Unknown custom field"),
    ],
)
def test_invalid_values_are_refused(key: str, value: object, message: str) -> None:
    assert _message(key, value) == message


def test_long_enum_lists_are_not_spelled_out() -> None:
    values = tuple(f"v{number}" for number in range(21))
    definitions = {"big": FieldDefinition(key="big", type=FieldType.ENUM, enum_values=values)}
    with pytest.raises(InvalidInput) as raised:
        validate_custom_values({"big": "nope"}, definitions)
    assert raised.value.errors[0].message == "Must be one of the values defined for this field"


def test_every_invalid_value_is_reported_at_once() -> None:
    values = {
        "nickname": "fine",
        "shoe_size": "big",
        "vip": "yes",
        "tier": "gold",
        "crm_id": "C-1",
        "nope": 1,
    }
    with pytest.raises(InvalidInput) as raised:
        validate_custom_values(values, DEFINITIONS)
    assert raised.value.detail == "4 invalid custom field values."
    assert [(e.pointer, e.message) for e in raised.value.errors] == [
        ("/profile/custom_fields/shoe_size", "Must be an integer"),
        ("/profile/custom_fields/vip", "Must be true or false"),
        (
            "/profile/custom_fields/crm_id",
            "unique_id fields are identifiers; send them in identifiers.external",
        ),
        ("/profile/custom_fields/nope", "Unknown custom field"),
    ]


def test_pointers_escape_keys_and_take_the_callers_prefix() -> None:
    errors = _errors({"a/b": 1, "c~d": 2}, pointer_prefix="/custom_fields")
    assert [e.pointer for e in errors] == ["/custom_fields/a~1b", "/custom_fields/c~0d"]


def test_unique_id_keys() -> None:
    assert unique_id_keys(DEFINITIONS) == {"crm_id"}
    assert unique_id_keys({}) == set()
