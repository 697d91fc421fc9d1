"""What each CSV column means: the header read once into a plan, checked against the project.

A plan is checked before any row is read, so a file whose columns cannot be understood
(an unknown target, an external id that is not a unique_id field) fails as a whole with
one clear message instead of filling the error report with every row.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.core.schema_names import literal_values
from app.customers.inputs import PROFILE_FIELDS
from app.fields.values import FieldDefinitions, FieldType, unique_id_keys
from app.subscriptions.schemas import Channel

IGNORE = "ignore"
EMAIL = "email"
PHONE = "phone"
DISCOUNT_CARDS = "discount_cards"
EXTERNAL_PREFIX = "external."
CUSTOM_PREFIX = "custom."
SUBSCRIPTION_PREFIX = "subscription."

_CHANNELS: frozenset[str] = frozenset(literal_values(Channel))
_TOPIC = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


class PlanError(ValueError):
    """The header cannot be read as a plan; str(error) names every problem column."""


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    target: str

    @property
    def key(self) -> str:
        """The custom field, external id field or subscription after the target's prefix."""
        return self.target.split(".", 1)[1] if "." in self.target else ""


@dataclass(frozen=True)
class SubscriptionColumn:
    column: Column
    channel: str
    topic: str | None


@dataclass(frozen=True)
class ColumnPlan:
    width: int
    email: Column | None
    phone: Column | None
    cards: Column | None
    external: tuple[Column, ...]
    profile: tuple[Column, ...]
    custom: tuple[Column, ...]
    subscriptions: tuple[SubscriptionColumn, ...]
    # Custom field types by key, for reading cells as the type's JSON value.
    custom_types: Mapping[str, FieldType]

    def column_of_pointer(self, pointer: str) -> str:
        """The header a problem at a request JSON pointer came from ("" for the row)."""
        for prefix, column in self._pointer_columns():
            if pointer == prefix or pointer.startswith(prefix + "/"):
                return column.header
        return ""

    def _pointer_columns(self) -> list[tuple[str, Column]]:
        found: list[tuple[str, Column]] = []
        for prefix, maybe in (
            ("/identifiers/email", self.email),
            ("/identifiers/phone", self.phone),
            ("/identifiers/discount_cards", self.cards),
        ):
            if maybe is not None:
                found.append((prefix, maybe))
        found += [(f"/identifiers/external/{c.key}", c) for c in self.external]
        found += [(f"/profile/{c.target}", c) for c in self.profile]
        found += [(f"/profile/custom_fields/{c.key}", c) for c in self.custom]
        return found


def plan_columns(
    header: list[str], mapping: Mapping[str, str], definitions: FieldDefinitions
) -> ColumnPlan:
    """The plan for a header row, or PlanError naming every column it cannot use."""
    problems: list[str] = []
    columns = [Column(i, name, mapping.get(name, name.strip())) for i, name in enumerate(header)]
    for unused in sorted(set(mapping) - set(header)):
        problems.append(f"mapping names {unused!r}, which is not in the header")
    seen: dict[str, str] = {}
    for column in columns:
        problem = _target_problem(column.target, definitions)
        if problem is not None:
            problems.append(f"column {column.header!r}: {problem}")
        elif column.target != IGNORE and column.target in seen:
            problems.append(
                f"columns {seen[column.target]!r} and {column.header!r} both map to "
                f"{column.target!r}"
            )
        seen.setdefault(column.target, column.header)
    if problems:
        raise PlanError("; ".join(problems))
    used = [c for c in columns if c.target != IGNORE]
    return ColumnPlan(
        width=len(header),
        email=_single(used, EMAIL),
        phone=_single(used, PHONE),
        cards=_single(used, DISCOUNT_CARDS),
        external=tuple(c for c in used if c.target.startswith(EXTERNAL_PREFIX)),
        profile=tuple(c for c in used if c.target in PROFILE_FIELDS),
        custom=tuple(c for c in used if c.target.startswith(CUSTOM_PREFIX)),
        subscriptions=tuple(
            _subscription(c) for c in used if c.target.startswith(SUBSCRIPTION_PREFIX)
        ),
        custom_types={key: d.type for key, d in definitions.items()},
    )


def _target_problem(target: str, definitions: FieldDefinitions) -> str | None:
    if target in (IGNORE, EMAIL, PHONE, DISCOUNT_CARDS) or target in PROFILE_FIELDS:
        return None
    if target.startswith(EXTERNAL_PREFIX):
        key = target.removeprefix(EXTERNAL_PREFIX)
        if key not in unique_id_keys(definitions):
            return f"no custom field of type unique_id has the key {key!r}"
        return None
    if target.startswith(CUSTOM_PREFIX):
        key = target.removeprefix(CUSTOM_PREFIX)
        definition = definitions.get(key)
        if definition is None:
            return f"no custom field has the key {key!r}"
        if definition.type is FieldType.UNIQUE_ID:
            return f"{key!r} is a unique_id field: map it to 'external.{key}'"
        return None
    if target.startswith(SUBSCRIPTION_PREFIX):
        channel, _, topic = target.removeprefix(SUBSCRIPTION_PREFIX).partition(".")
        if channel not in _CHANNELS:
            return f"unknown channel {channel!r} (one of {', '.join(sorted(_CHANNELS))})"
        if topic and not _TOPIC.fullmatch(topic):
            return f"{topic!r} is not a topic key"
        return None
    return f"unknown target {target!r}; map it to a target or to 'ignore'"


def _single(columns: list[Column], target: str) -> Column | None:
    return next((c for c in columns if c.target == target), None)


def _subscription(column: Column) -> SubscriptionColumn:
    channel, _, topic = column.target.removeprefix(SUBSCRIPTION_PREFIX).partition(".")
    return SubscriptionColumn(column, channel, topic or None)
