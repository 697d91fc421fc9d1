"""From request bodies to normalised identifiers and validated profile values.

Everything wrong with a request is collected first and reported in one 422, before the
use case writes anything.
"""

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import ProjectSettings
from app.core.errors import FieldError, InvalidInput
from app.core.problems import json_pointer
from app.customers.schemas import IdentifiersIn, IgnoredIdentifier, ProfileIn
from app.fields import service as fields_service
from app.fields.values import FieldDefinitions, unique_id_keys, validate_custom_values
from app.identity import kinds
from app.identity.blocklist import Blocklist, load_blocklist
from app.identity.normalize import (
    InvalidIdentifier,
    normalize_device_identifier,
    normalize_discount_card,
    normalize_email,
    normalize_external_id,
    normalize_phone,
)
from app.identity.service import IdentifierRef

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "middle_name",
    "birth_date",
    "gender",
    "area",
    "time_zone",
)


@dataclass(frozen=True)
class ProjectRules:
    """What reading a request needs from the project, loaded in the use case's transaction."""

    phone_region: str
    blocklist: Blocklist
    fields: FieldDefinitions

    @property
    def unique_id_fields(self) -> set[str]:
        return unique_id_keys(self.fields)


@dataclass(frozen=True)
class _CachedRules:
    version: int
    blocklist: Blocklist
    fields: FieldDefinitions


class RulesCache:
    """Each project's blocklist and custom field definitions, per process.

    Every request already knows its project's `rules_version` (read with the API key), and
    every change to fields or the blocklist bumps it in the same transaction, so an entry
    is reused exactly while it is current: no TTL, no stale reads across workers.
    """

    def __init__(self, max_projects: int = 1024) -> None:
        self._entries: OrderedDict[uuid.UUID, _CachedRules] = OrderedDict()
        self._max_projects = max_projects

    async def rules(
        self, session: AsyncSession, project_id: uuid.UUID, version: int
    ) -> _CachedRules:
        cached = self._entries.get(project_id)
        if cached is not None and cached.version >= version:
            self._entries.move_to_end(project_id)
            return cached
        loaded = _CachedRules(
            version=version,
            blocklist=await load_blocklist(session, project_id),
            fields=await fields_service.definitions_for(session, project_id),
        )
        self._entries[project_id] = loaded
        if len(self._entries) > self._max_projects:
            self._entries.popitem(last=False)
        return loaded


_rules_cache = RulesCache()


async def load_rules(
    session: AsyncSession,
    project_id: uuid.UUID,
    project: ProjectSettings,
    *,
    default_phone_region: str,
) -> ProjectRules:
    cached = await _rules_cache.rules(session, project_id, project.rules_version)
    return ProjectRules(
        phone_region=project.default_phone_region or default_phone_region,
        blocklist=cached.blocklist,
        fields=cached.fields,
    )


@dataclass(frozen=True)
class WantedIdentifier:
    ref: IdentifierRef
    pointer: str


@dataclass
class IdentifierReader:
    """Normalises identifier values one by one, collecting problems and blocklisted values."""

    rules: ProjectRules
    errors: list[FieldError] = field(default_factory=list)
    ignored: list[IgnoredIdentifier] = field(default_factory=list)

    def read(self, kind: str, raw: str, pointer: str) -> WantedIdentifier | None:
        if self.rules.blocklist.blocks(kind, raw):
            self._ignore(kind, raw)
            return None
        try:
            value = self._normalizer(kind)(raw)
        except InvalidIdentifier as error:
            self.errors.append(FieldError(pointer=pointer, message=str(error)))
            return None
        if self.rules.blocklist.blocks(kind, raw, value):
            self._ignore(kind, value)
            return None
        return WantedIdentifier(IdentifierRef(kind, value), pointer)

    def read_external(self, key: str, raw: str, pointer: str) -> WantedIdentifier | None:
        if key not in self.rules.unique_id_fields:
            self.errors.append(
                FieldError(
                    pointer=pointer, message="No custom field of type unique_id has this key."
                )
            )
            return None
        return self.read(kinds.external_kind(key), raw, pointer)

    def _ignore(self, kind: str, value: str) -> None:
        self.ignored.append(IgnoredIdentifier(kind=kind, value=value, reason="blocklisted"))

    def _normalizer(self, kind: str) -> Callable[[str], str]:
        if kind == kinds.EMAIL:
            return normalize_email
        if kind == kinds.PHONE:
            return lambda raw: normalize_phone(raw, default_region=self.rules.phone_region)
        if kind == kinds.DISCOUNT_CARD:
            return normalize_discount_card
        if kind in (kinds.APP_INSTALLATION, kinds.PUSH_TOKEN):
            return normalize_device_identifier
        return normalize_external_id


def read_identifiers(
    reader: IdentifierReader, identifiers: IdentifiersIn, *, prefix: str = "/identifiers"
) -> list[WantedIdentifier]:
    """Every identifier of a request body, normalised, each once; problems go to the reader."""
    found: list[WantedIdentifier | None] = []
    if identifiers.email is not None:
        found.append(reader.read(kinds.EMAIL, identifiers.email, f"{prefix}/email"))
    if identifiers.phone is not None:
        found.append(reader.read(kinds.PHONE, identifiers.phone, f"{prefix}/phone"))
    for index, card in enumerate(identifiers.discount_cards or []):
        found.append(reader.read(kinds.DISCOUNT_CARD, card, f"{prefix}/discount_cards/{index}"))
    for key, value in (identifiers.external or {}).items():
        pointer = prefix + json_pointer(["external", key])
        found.append(reader.read_external(key, value, pointer))
    unique: dict[IdentifierRef, WantedIdentifier] = {}
    for wanted in found:
        if wanted is not None:
            unique.setdefault(wanted.ref, wanted)
    return list(unique.values())


@dataclass(frozen=True)
class ProfileValues:
    """The profile fields a request sent (null included: it clears) and its custom values."""

    fields: dict[str, Any]
    custom: dict[str, JsonValue]


def read_profile(
    profile: ProfileIn, rules: ProjectRules, errors: list[FieldError], *, pointer: str
) -> ProfileValues:
    sent = {
        name: getattr(profile, name) for name in PROFILE_FIELDS if name in profile.model_fields_set
    }
    custom: dict[str, JsonValue] = {}
    if profile.custom_fields:
        try:
            custom = validate_custom_values(
                profile.custom_fields, rules.fields, pointer_prefix=f"{pointer}/custom_fields"
            )
        except InvalidInput as invalid:
            errors.extend(invalid.errors)
    return ProfileValues(fields=sent, custom=custom)


def raise_if_invalid(errors: list[FieldError]) -> None:
    if errors:
        noun = "value" if len(errors) == 1 else "values"
        raise InvalidInput(f"{len(errors)} invalid {noun} in the request.", errors=errors)


def pointer_to(*parts: str | int) -> str:
    return json_pointer(list(parts))


class ProfileHolder(Protocol):
    """What apply_profile reads and sets: a Customer row, or a NewProfile not stored yet."""

    first_name: str | None
    last_name: str | None
    middle_name: str | None
    birth_date: date | None
    gender: str | None
    area: str | None
    time_zone: str | None
    custom_fields: dict[str, Any]


@dataclass
class NewProfile:
    """The profile of a customer about to be created in bulk (no ORM object per row)."""

    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    area: str | None = None
    time_zone: str | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old_value: Any
    new_value: Any


def apply_profile(customer: ProfileHolder, values: ProfileValues) -> list[FieldChange]:
    """Set what differs; one FieldChange per field that really changed."""
    changes: list[FieldChange] = []
    for name, new in values.fields.items():
        old = getattr(customer, name)
        if old != new:
            setattr(customer, name, new)
            changes.append(FieldChange(name, _json(old), _json(new)))
    custom = dict(customer.custom_fields or {})
    custom_changes: list[FieldChange] = []
    for key, new_value in values.custom.items():
        old_value = custom.get(key)
        if old_value == new_value and (new_value is not None or key not in custom):
            continue
        if new_value is None:
            custom.pop(key, None)
        else:
            custom[key] = new_value
        custom_changes.append(FieldChange(f"custom_fields.{key}", old_value, new_value))
    if custom_changes:
        # A new dict, so the ORM sees the JSONB column change.
        customer.custom_fields = custom
    return changes + custom_changes


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
