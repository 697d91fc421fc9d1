"""Finding customers: the filters and sort orders of `GET /v1/customers`.

The router checks each query parameter's syntax (types, lengths, enums). This module holds
the rules that need the project (custom field types, unique_id identifier kinds) and the
normalisation that makes a filter compare like the stored values (an email domain is
lower-cased as emails are, a phone prefix is E.164 digits). Every problem is reported at
once, at the query parameter it came from. The result, `CustomerSearch`, is what the
repository's one statement takes; no SQL here.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import JsonValue

from app.core.errors import FieldError, InvalidInput
from app.core.pagination import decode_cursor
from app.core.schema_names import SchemaName, literal_values
from app.customers.inputs import raise_if_invalid
from app.fields.values import (
    MAX_DECIMAL_FRACTION_DIGITS,
    FieldDefinition,
    FieldDefinitions,
    FieldType,
    validate_custom_values,
)
from app.identity import kinds
from app.identity.normalize import (
    InvalidIdentifier,
    normalize_device_identifier,
    normalize_discount_card,
    normalize_email,
    normalize_external_id,
)
from app.subscriptions.models import NO_TOPIC
from app.subscriptions.schemas import Channel, Status

if TYPE_CHECKING:  # views reads through the repository, which takes this module's types
    from app.customers.views import CustomerView

CustomerSort = Annotated[
    Literal["id", "-id", "updated_at", "-updated_at", "last_name", "-last_name"],
    SchemaName("CustomerSort"),
]
# `custom` and `subscription` may repeat; each is one more condition of the statement.
MAX_REPEATED_FILTERS = 10
SEARCHABLE_KINDS = (
    kinds.EMAIL,
    kinds.PHONE,
    kinds.DISCOUNT_CARD,
    kinds.APP_INSTALLATION,
    kinds.PUSH_TOKEN,
)
CHANNELS = literal_values(Channel)
STATUSES = literal_values(Status)
# E.164: "+" and at most 15 digits. Separators are dropped, as phone normalisation does.
_PHONE_PREFIX = re.compile(r"\+?[0-9]{1,15}")
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_TOPIC_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class SearchParameters:
    """The query as the router read it: each value's syntax checked, nothing compared with
    the project's definitions yet."""

    status: str = "active"
    updated_since: datetime | None = None
    created_since: datetime | None = None
    email_domain: str | None = None
    identifier_kind: str | None = None
    identifier_prefix: str | None = None
    name: str | None = None
    birth_date_from: date | None = None
    birth_date_to: date | None = None
    gender: str | None = None
    area: str | None = None
    custom: tuple[str, ...] = ()
    segment_id: uuid.UUID | None = None
    subscription: tuple[str, ...] = ()

    @property
    def needs_field_definitions(self) -> bool:
        """Custom values and external kinds are read by the project's field definitions."""
        return bool(self.custom) or kinds.is_external(self.identifier_kind or "")


@dataclass(frozen=True)
class IdentifierPrefix:
    kind: str
    prefix: str


@dataclass(frozen=True)
class CustomFieldMatch:
    """A custom field holding a value: any of `values`, which are spellings of one value."""

    key: str
    values: tuple[JsonValue, ...]


@dataclass(frozen=True)
class SubscriptionMatch:
    channel: str
    topic: str  # NO_TOPIC: the channel-level decision
    status: str


@dataclass(frozen=True)
class CustomerSearch:
    """Normalised filters, all of which a customer must match (AND)."""

    status: str = "active"
    updated_since: datetime | None = None
    created_since: datetime | None = None
    email_domain: str | None = None
    identifier: IdentifierPrefix | None = None
    name_prefix: str | None = None
    birth_date_from: date | None = None
    birth_date_to: date | None = None
    gender: str | None = None
    area: str | None = None
    custom: tuple[CustomFieldMatch, ...] = ()
    segment_id: uuid.UUID | None = None
    subscriptions: tuple[SubscriptionMatch, ...] = ()


@dataclass(frozen=True)
class SortPosition:
    """The last row of the previous page: its sort value (None for the id sorts) and id."""

    value: datetime | str | None
    id: uuid.UUID


@dataclass(frozen=True)
class SearchPage:
    sort: CustomerSort
    after: SortPosition | None
    limit: int


def read_search(parameters: SearchParameters, *, fields: FieldDefinitions) -> CustomerSearch:
    """The filters, normalised and checked against the project's custom field definitions
    (`fields`; empty unless `parameters.needs_field_definitions`), or one 422 naming every
    bad parameter."""
    errors: list[FieldError] = []
    if len(parameters.custom) > MAX_REPEATED_FILTERS:
        errors.append(_error("/custom", f"At most {MAX_REPEATED_FILTERS} custom filters"))
    if len(parameters.subscription) > MAX_REPEATED_FILTERS:
        errors.append(
            _error("/subscription", f"At most {MAX_REPEATED_FILTERS} subscription filters")
        )
    search = CustomerSearch(
        status=parameters.status,
        updated_since=parameters.updated_since,
        created_since=parameters.created_since,
        email_domain=_email_domain(parameters.email_domain, errors),
        identifier=_identifier_prefix(parameters, fields, errors),
        name_prefix=_name_prefix(parameters.name, errors),
        birth_date_from=parameters.birth_date_from,
        birth_date_to=parameters.birth_date_to,
        gender=parameters.gender,
        area=parameters.area,
        custom=tuple(
            match
            for index, raw in enumerate(parameters.custom[:MAX_REPEATED_FILTERS])
            if (match := _custom_match(raw, fields, f"/custom/{index}", errors)) is not None
        ),
        segment_id=parameters.segment_id,
        subscriptions=tuple(
            consent
            for index, raw in enumerate(parameters.subscription[:MAX_REPEATED_FILTERS])
            if (consent := _subscription_match(raw, f"/subscription/{index}", errors)) is not None
        ),
    )
    if (
        parameters.birth_date_from is not None
        and parameters.birth_date_to is not None
        and parameters.birth_date_from > parameters.birth_date_to
    ):
        errors.append(_error("/birth_date_from", "Must not be after birth_date_to"))
    raise_if_invalid(errors)
    return search


def _error(pointer: str, message: str) -> FieldError:
    return FieldError(pointer=pointer, message=message, location="query")


def _email_domain(raw: str | None, errors: list[FieldError]) -> str | None:
    """The domain as an email holding it stores it: the same validation and lower-casing
    (an IDNA "xn--" spelling becomes the Unicode form emails keep)."""
    if raw is None:
        return None
    domain = raw.strip().removeprefix("@")
    try:
        # A real address around the domain, so the domain is normalised by the very code
        # that normalised the stored emails.
        address = normalize_email(f"x@{domain}")
    except InvalidIdentifier as error:
        errors.append(_error("/email_domain", f"Not an email domain: {error}"))
        return None
    return address.rpartition("@")[2]


def _identifier_prefix(
    parameters: SearchParameters, fields: FieldDefinitions, errors: list[FieldError]
) -> IdentifierPrefix | None:
    kind, raw = parameters.identifier_kind, parameters.identifier_prefix
    if kind is None and raw is None:
        return None
    if raw is None:
        errors.append(_error("/identifier_prefix", "Required with identifier_kind"))
        return None
    if kind is None:
        errors.append(_error("/identifier_kind", "Required with identifier_prefix"))
        return None
    if not _searchable_kind(kind, fields):
        errors.append(
            _error(
                "/identifier_kind",
                f"One of {', '.join(SEARCHABLE_KINDS)}, or external:<key> of a unique_id field",
            )
        )
        return None
    try:
        prefix = _normalised_prefix(kind, raw)
    except InvalidIdentifier as error:
        errors.append(_error("/identifier_prefix", str(error)))
        return None
    return IdentifierPrefix(kind, prefix)


def _searchable_kind(kind: str, fields: FieldDefinitions) -> bool:
    if kinds.is_external(kind):
        definition = fields.get(kinds.external_field(kind))
        return definition is not None and definition.type is FieldType.UNIQUE_ID
    return kind in SEARCHABLE_KINDS


def _normalised_prefix(kind: str, raw: str) -> str:
    """The start of a stored value: normalised as far as a part of a value can be."""
    if kind == kinds.EMAIL:
        # Emails are stored lower-cased; a part of one cannot be syntax-checked.
        prefix = raw.strip().lower()
        if not prefix:
            raise InvalidIdentifier("not a valid email prefix: it is empty")
        return prefix
    if kind == kinds.PHONE:
        return _phone_prefix(raw)
    if kind == kinds.DISCOUNT_CARD:
        return normalize_discount_card(raw)
    if kind in (kinds.APP_INSTALLATION, kinds.PUSH_TOKEN):
        return normalize_device_identifier(raw)
    return normalize_external_id(raw)


def _phone_prefix(raw: str) -> str:
    """Phones are stored in E.164 ("+49301234567"). The "+" is optional here: in a query
    string an unescaped "+" arrives as a space."""
    digits = _PHONE_SEPARATORS.sub("", raw)
    if not _PHONE_PREFIX.fullmatch(digits):
        raise InvalidIdentifier("not a valid phone prefix: give the E.164 digits, e.g. +4930")
    return "+" + digits.removeprefix("+")


def _name_prefix(raw: str | None, errors: list[FieldError]) -> str | None:
    if raw is None:
        return None
    prefix = raw.strip()
    if not prefix:
        errors.append(_error("/name", "Must not be blank"))
        return None
    return prefix


def _custom_match(
    raw: str, fields: FieldDefinitions, pointer: str, errors: list[FieldError]
) -> CustomFieldMatch | None:
    key, separator, text = raw.partition(":")
    if not separator:
        errors.append(_error(pointer, "Write key:value, e.g. tier:gold"))
        return None
    definition = fields.get(key)
    if definition is None:
        errors.append(_error(pointer, f"No custom field {key!r}"))
        return None
    if definition.type is FieldType.UNIQUE_ID:
        errors.append(
            _error(
                pointer,
                f"{key!r} is an identifier: search it with identifier_kind=external:{key}",
            )
        )
        return None
    try:
        value = _typed_value(text, definition)
    except ValueError as error:
        errors.append(_error(pointer, str(error)))
        return None
    try:
        # The same normalisation as the values stored (dates, date-times, decimals).
        stored = validate_custom_values({key: value}, fields, pointer_prefix=pointer)[key]
    except InvalidInput as invalid:
        errors.extend(_error(pointer, e.message) for e in invalid.errors)
        return None
    if definition.type is FieldType.DECIMAL and isinstance(stored, str):
        return CustomFieldMatch(key, _decimal_spellings(stored))
    return CustomFieldMatch(key, (stored,))


def _typed_value(text: str, definition: FieldDefinition) -> JsonValue:
    """A query string is text; integers and booleans are JSON numbers and booleans when
    stored, so they are read as such first."""
    if definition.type is FieldType.INTEGER:
        if not _INTEGER_TEXT.fullmatch(text):
            raise ValueError("Must be an integer")
        return int(text)
    if definition.type is FieldType.BOOLEAN:
        if text not in ("true", "false"):
            raise ValueError("Must be true or false")
        return text == "true"
    return text


def _decimal_spellings(stored: str) -> tuple[str, ...]:
    """Every text the decimal normaliser may have stored this number as: it keeps the scale
    the client sent ("12.50"), so equal numbers differ in trailing zeros only. One
    containment test per spelling keeps the match an index lookup (at most 19 of them)."""
    integral, _, fraction = stored.partition(".")
    fraction = fraction.rstrip("0")
    spellings = [f"{integral}.{fraction}" if fraction else integral]
    spellings += [
        f"{integral}.{fraction.ljust(digits, '0')}"
        for digits in range(len(fraction) + 1, MAX_DECIMAL_FRACTION_DIGITS + 1)
    ]
    return tuple(spellings)


def _subscription_match(
    raw: str, pointer: str, errors: list[FieldError]
) -> SubscriptionMatch | None:
    target, separator, status = raw.rpartition(":")
    channel, dot, topic = target.partition(".")
    if not separator:
        errors.append(_error(pointer, "Write channel:status or channel.topic:status"))
        return None
    problems = []
    if channel not in CHANNELS:
        problems.append(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
    if dot and not _TOPIC_KEY.fullmatch(topic):
        problems.append(f"{topic!r} is not a topic key")
    if status not in STATUSES:
        problems.append(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
    if problems:
        errors.append(_error(pointer, "; ".join(problems).capitalize()))
        return None
    return SubscriptionMatch(channel, topic if dot else NO_TOPIC, status)


def search_page(cursor: str | None, sort: CustomerSort, limit: int) -> SearchPage:
    """The page after `cursor`, which must come from a page of the same sort: a position
    in one order means nothing in another."""
    if cursor is None:
        return SearchPage(sort, None, limit)
    key = decode_cursor(cursor)
    if not key or key[0] != sort:
        raise _invalid_cursor("The cursor belongs to another sort order")
    try:
        if sort in ("id", "-id") and len(key) == 2:
            return SearchPage(sort, SortPosition(None, uuid.UUID(str(key[1]))), limit)
        if len(key) == 3:
            return SearchPage(
                sort, SortPosition(_sort_value(sort, key[1]), uuid.UUID(str(key[2]))), limit
            )
    except (TypeError, ValueError, AttributeError) as error:
        raise _invalid_cursor("Invalid cursor") from error
    raise _invalid_cursor("Invalid cursor")


def _sort_value(sort: CustomerSort, value: Any) -> datetime | str:
    if not isinstance(value, str):
        raise TypeError("a sort value is a string")
    if sort.endswith("updated_at"):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a timestamp with an offset")
        return moment
    return value


def _invalid_cursor(message: str) -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this API returned for this sort order.",
        errors=[_error("/cursor", message)],
    )


def cursor_key(view: "CustomerView", sort: CustomerSort) -> list[Any]:
    """What `search_page` reads back: the sort, the row's sort value, its id."""
    if sort in ("id", "-id"):
        return [sort, str(view.id)]
    if sort.endswith("updated_at"):
        return [sort, view.updated_at.isoformat(), str(view.id)]
    # The repository sorts a missing last name as ''.
    return [sort, view.last_name or "", str(view.id)]
