"""Custom field types and the validation of their values: pure functions, no database.

The customers domain calls `validate_custom_values` on every write, with the definitions
it read in its own transaction (`app.fields.service.definitions_for`).
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from pydantic import JsonValue

from app.core.errors import FieldError, InvalidInput
from app.core.problems import json_pointer


class FieldEntity(StrEnum):
    """The kinds of records custom fields can extend."""

    CUSTOMER = "customer"


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    # Values are identifiers (kind `external:<key>`), unique per project; not profile values.
    UNIQUE_ID = "unique_id"


DEFAULT_STRING_MAX_LENGTH = 1000
MAX_STRING_MAX_LENGTH = 10000
# Signed 64-bit, so every stored integer fits a PostgreSQL bigint when segments compare them.
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
# Bounds a decimal's plain form: "1e999999999" would otherwise expand to a gigabyte of zeros.
MAX_DECIMAL_INTEGER_DIGITS = 38
MAX_DECIMAL_FRACTION_DIGITS = 18
# Enum values listed in an error message, at most; longer lists would drown the message.
_MAX_ENUM_VALUES_IN_MESSAGE = 20

# ASCII digits only: Python's \d and Decimal() also accept other scripts' digits.
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 section 5.6: the offset is mandatory; `T`, `Z` may be lower case, `T` may be a space.
_DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True)
class FieldDefinition:
    """What validation needs to know of one custom field."""

    key: str
    type: FieldType
    enum_values: tuple[str, ...] | None = None
    max_length: int | None = None


FieldDefinitions = dict[str, FieldDefinition]
"""Definitions by key."""


class _InvalidValue(Exception):
    """One value breaks its field's rule; the message is shown to the client."""


def validate_custom_values(
    values: Mapping[str, object],
    definitions: FieldDefinitions,
    *,
    pointer_prefix: str = "/profile/custom_fields",
) -> dict[str, JsonValue]:
    """The values normalised for storage (None means: remove the value), or InvalidInput.

    Every invalid entry is reported at once, each at `<pointer_prefix>/<key>`.
    """
    normalised: dict[str, JsonValue] = {}
    errors: list[FieldError] = []
    for key, value in values.items():
        try:
            normalised[key] = _normalised_value(value, definitions.get(key))
        except _InvalidValue as invalid:
            errors.append(
                FieldError(pointer=pointer_prefix + json_pointer([key]), message=str(invalid))
            )
    if errors:
        noun = "value" if len(errors) == 1 else "values"
        raise InvalidInput(f"{len(errors)} invalid custom field {noun}.", errors=errors)
    return normalised


def unique_id_keys(definitions: FieldDefinitions) -> set[str]:
    """Keys of the unique_id fields: each is the identifier kind `external:<key>`."""
    return {
        key for key, definition in definitions.items() if definition.type is FieldType.UNIQUE_ID
    }


def _normalised_value(value: object, definition: FieldDefinition | None) -> JsonValue:
    if definition is None:
        raise _InvalidValue("Unknown custom field")
    if definition.type is FieldType.UNIQUE_ID:
        raise _InvalidValue("unique_id fields are identifiers; send them in identifiers.external")
    if value is None:
        return None
    return _NORMALISERS[definition.type](value, definition)


def _string(value: object, definition: FieldDefinition) -> JsonValue:
    if not isinstance(value, str):
        raise _InvalidValue("Must be a string")
    limit = definition.max_length or DEFAULT_STRING_MAX_LENGTH
    if len(value) > limit:
        raise _InvalidValue(f"Must be at most {limit} characters long")
    return value


def _integer(value: object, definition: FieldDefinition) -> JsonValue:
    # bool is a subclass of int, but true is not 1 to a client.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _InvalidValue("Must be an integer")
    if not MIN_INTEGER <= value <= MAX_INTEGER:
        raise _InvalidValue("Must fit in a signed 64-bit integer")
    return value


def _decimal(value: object, definition: FieldDefinition) -> JsonValue:
    number = _parsed_decimal(value)
    _, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # 'n', 'N' or 'F': NaN or infinity, from a float
        raise _InvalidValue("Must be a finite number")
    if (
        len(digits) + exponent > MAX_DECIMAL_INTEGER_DIGITS
        or -exponent > MAX_DECIMAL_FRACTION_DIGITS
    ):
        raise _InvalidValue(
            f"Must have at most {MAX_DECIMAL_INTEGER_DIGITS} digits before "
            f"and {MAX_DECIMAL_FRACTION_DIGITS} after the decimal point"
        )
    if number.is_zero():
        number = number.copy_abs()  # "-0.0" and "0.0" are the same value
    # Fixed-point text keeps the scale the client sent ("12.50") and never uses an exponent.
    return format(number, "f")


def _parsed_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise _InvalidValue("Must be a number or a decimal string")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest text that round-trips: 0.1 stays 0.1, not its binary expansion.
        return Decimal(repr(value))
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation as error:
            raise _InvalidValue("Must be a decimal number") from error
    raise _InvalidValue("Must be a number or a decimal string")


def _boolean(value: object, definition: FieldDefinition) -> JsonValue:
    if not isinstance(value, bool):
        raise _InvalidValue("Must be true or false")
    return value


def _date(value: object, definition: FieldDefinition) -> JsonValue:
    # date.fromisoformat alone also takes "20240131" and week dates; the API promises YYYY-MM-DD.
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        raise _InvalidValue("Must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as error:
        raise _InvalidValue("Must be a valid calendar date") from error


def _datetime(value: object, definition: FieldDefinition) -> JsonValue:
    if not isinstance(value, str) or not _DATETIME_TEXT.fullmatch(value):
        raise _InvalidValue(
            "Must be an RFC 3339 date-time with a UTC offset, e.g. 2024-05-01T12:30:00Z"
        )
    try:
        moment = datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise _InvalidValue("Must be a valid date-time") from error
    return moment.isoformat().replace("+00:00", "Z")


def _enum(value: object, definition: FieldDefinition) -> JsonValue:
    allowed = definition.enum_values or ()
    if not isinstance(value, str) or value not in allowed:
        raise _InvalidValue(_enum_message(allowed))
    return value


def _enum_message(allowed: tuple[str, ...]) -> str:
    if len(allowed) > _MAX_ENUM_VALUES_IN_MESSAGE:
        return "Must be one of the values defined for this field"
    return "Must be one of: " + ", ".join(repr(v) for v in allowed)


_Normaliser = Callable[[object, FieldDefinition], JsonValue]
_NORMALISERS: dict[FieldType, _Normaliser] = {
    FieldType.STRING: _string,
    FieldType.INTEGER: _integer,
    FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.ENUM: _enum,
}
