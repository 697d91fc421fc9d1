"""Request and response bodies of customers: the core shapes of docs/architecture.md."""

import uuid
import zoneinfo
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.schema_names import RESPONSE_MODEL_CONFIG, SchemaName
from app.subscriptions.schemas import MAX_DECISIONS_PER_REQUEST, SubscriptionDecision

Gender = Annotated[Literal["female", "male", "unknown"], SchemaName("Gender")]
OnConflict = Annotated[Literal["reject", "merge", "reassign"], SchemaName("OnConflict")]
IdentifyResultKind = Annotated[
    Literal["created", "updated", "merged", "reassigned", "unchanged"], SchemaName("IdentifyResult")
]
CustomerStatus = Annotated[Literal["active", "merged", "erased"], SchemaName("CustomerStatus")]

MAX_DISCOUNT_CARDS = 50
MAX_EXTERNAL_IDS = 20
MAX_CUSTOM_FIELDS = 100
MAX_MERGE_SOURCES = 20

Name = Annotated[str, Field(max_length=200)]
FieldKey = Annotated[str, Field(min_length=1, max_length=64)]
EmailInput = Annotated[str, Field(max_length=320, examples=["Jane.Doe@Example.com"])]
PhoneInput = Annotated[str, Field(max_length=64, examples=["+49 30 1234567"])]
CardInput = Annotated[str, Field(max_length=64)]
ExternalValue = Annotated[str, Field(max_length=256)]
# Objects keyed by field: named components, so a generated client gets one class for each.
ExternalIds = Annotated[
    dict[FieldKey, ExternalValue], Field(max_length=MAX_EXTERNAL_IDS), SchemaName("ExternalIds")
]
ExternalIdsPatch = Annotated[
    dict[FieldKey, ExternalValue | None],
    Field(max_length=MAX_EXTERNAL_IDS),
    SchemaName("ExternalIdsPatch"),
]
CustomFieldValues = Annotated[
    dict[FieldKey, Any], Field(max_length=MAX_CUSTOM_FIELDS), SchemaName("CustomFieldValues")
]


@cache
def _known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_time_zone(value: str | None) -> str | None:
    if value is not None and value not in _known_time_zones():
        raise ValueError("not an IANA time zone name (e.g. Europe/Berlin)")
    return value


def _check_birth_date(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= date.today():
        raise ValueError("must be between 1900-01-01 and today")
    return value


TimeZone = Annotated[
    str | None, Field(max_length=64, examples=["Europe/Berlin"]), AfterValidator(_check_time_zone)
]
BirthDate = Annotated[date | None, AfterValidator(_check_birth_date)]

_IDENTIFIERS_EXAMPLE: dict[str, Any] = {
    "email": "jane.doe@example.com",
    "phone": "+49301234567",
    "discount_cards": ["CARD-0001"],
    "external": {"crm_id": "C-1001"},
}
_PROFILE_EXAMPLE: dict[str, Any] = {
    "first_name": "Jane",
    "last_name": "Doe",
    "birth_date": "1990-01-31",
    "gender": "female",
    "area": "Berlin",
    "time_zone": "Europe/Berlin",
    "custom_fields": {"loyalty_tier": "gold"},
}


class IdentifiersIn(BaseModel):
    """Identifiers as sent: values are normalised before any comparison."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [_IDENTIFIERS_EXAMPLE]}
    )

    customer_id: uuid.UUID | None = Field(
        default=None, description="The system id; only for identify (not for create)."
    )
    email: EmailInput | None = None
    phone: PhoneInput | None = Field(
        default=None,
        description="Any spelling; read with the project's default region when it has no +.",
    )
    discount_cards: list[CardInput] | None = Field(default=None, max_length=MAX_DISCOUNT_CARDS)
    external: ExternalIds | None = Field(
        default=None, description="Values of custom fields of type unique_id, by field key."
    )


class ProfileIn(BaseModel):
    """Profile fields; a field sent as null is cleared, a field left out is kept."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_PROFILE_EXAMPLE]})

    first_name: Name | None = None
    last_name: Name | None = None
    middle_name: Name | None = None
    birth_date: BirthDate = None
    gender: Gender | None = None
    area: Name | None = None
    time_zone: TimeZone = None
    custom_fields: CustomFieldValues | None = Field(
        default=None, description="Values of custom fields by key; null removes a value."
    )


class CustomerCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"identifiers": _IDENTIFIERS_EXAMPLE, "profile": _PROFILE_EXAMPLE}]
        },
    )

    identifiers: IdentifiersIn
    profile: ProfileIn = Field(default_factory=ProfileIn)


class CustomerIdentify(CustomerCreate):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "identifiers": {"email": "Jane.Doe@Example.com", "phone": "030 1234567"},
                    "profile": {"first_name": "Jane"},
                    "on_conflict": "reject",
                }
            ]
        },
    )

    subscriptions: list[SubscriptionDecision] | None = Field(
        default=None,
        max_length=MAX_DECISIONS_PER_REQUEST,
        description="Consent decisions recorded with the identify, after its identifiers.",
    )
    on_conflict: OnConflict = Field(
        default="reject",
        description="When identifiers match different customers: `reject` (409), `reassign` "
        "(move them to the highest-priority match) or `merge`.",
    )


class IdentifiersPatch(BaseModel):
    """A JSON merge patch of identifiers: null removes; `discount_cards` replaces the whole list."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "new@example.com", "phone": None}]},
    )

    email: EmailInput | None = None
    phone: PhoneInput | None = None
    discount_cards: list[CardInput] | None = Field(default=None, max_length=MAX_DISCOUNT_CARDS)
    external: ExternalIdsPatch | None = Field(
        default=None, description="Values by field key; null removes that external id."
    )


class CustomerPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"identifiers": {"email": "jane@example.org"}, "profile": {"last_name": "Smith"}}
            ]
        },
    )

    identifiers: IdentifiersPatch | None = None
    profile: ProfileIn | None = None


class IdentifiersRead(BaseModel):
    email: str | None
    phone: str | None
    discount_cards: list[str]
    external: dict[str, str]


class ProfileRead(BaseModel):
    first_name: str | None
    last_name: str | None
    middle_name: str | None
    birth_date: date | None
    gender: Gender | None
    area: str | None
    time_zone: str | None
    custom_fields: dict[str, Any]


class AuthTokenRead(BaseModel):
    """That the customer has an auth token for apps; the token itself is never shown again."""

    fingerprint: str = Field(description="The token's public prefix, to tell tokens apart.")
    issued_at: datetime


class CustomerRead(BaseModel):
    model_config = RESPONSE_MODEL_CONFIG

    id: uuid.UUID
    status: CustomerStatus
    version: int = Field(description="Increases with every change; send it as `If-Match`.")
    identifiers: IdentifiersRead
    profile: ProfileRead
    merged_ids: list[uuid.UUID] = Field(description="Customers merged into this one.")
    auth_token: AuthTokenRead | None = Field(
        default=None, description="Set when the customer has an auth token for apps."
    )
    created_at: datetime
    updated_at: datetime


class IgnoredIdentifier(BaseModel):
    kind: str
    value: str
    reason: Literal["blocklisted"]


class IdentifyResponse(BaseModel):
    model_config = RESPONSE_MODEL_CONFIG

    dry_run: bool = Field(default=False, description="True: a preview; nothing was written.")
    result: IdentifyResultKind
    matched_by: list[str] = Field(description="Identifier kinds that matched existing customers.")
    merged_ids: list[uuid.UUID]
    ignored_identifiers: list[IgnoredIdentifier]
    customer: CustomerRead


class IdentifierHistoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    event: Literal[
        "added",
        "removed",
        "replaced",
        "moved_in",
        "moved_out",
        "merged_in",
        "merged_out",
        "merged_clash",
    ] = Field(
        description="`merged_clash`: a merged customer's value the survivor did not keep "
        "(it kept its own value of that single-valued kind)."
    )
    kind: str
    value: str
    replaced_by: str | None
    other_customer_id: uuid.UUID | None = Field(
        description="The other customer of a move or merge: where the identifier went "
        "(moved_out, merged_out) or came from (moved_in, merged_in, merged_clash)."
    )
    touchpoint: str
    initiator: str
    request_id: str | None
    created_at: datetime


class ChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    operation: str
    field: str | None
    old_value: Any
    new_value: Any
    touchpoint: str
    initiator: str
    request_id: str | None
    created_at: datetime


class CustomerMergeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "target_id": "01a22741-9713-75ce-bc96-01a8de0d14c8",
                    "source_ids": ["01a22741-9717-7620-bc7c-5a672ddd4632"],
                }
            ]
        },
    )

    target_id: uuid.UUID = Field(description="The survivor.")
    source_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=MAX_MERGE_SOURCES, description="Customers merged into it."
    )
    touchpoint: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="Recorded instead of the key's touchpoint; must be one the key allows.",
    )


class MergedIdentifierRead(BaseModel):
    model_config = RESPONSE_MODEL_CONFIG

    kind: str
    value: str
    from_customer: uuid.UUID
    kept: str | None = Field(
        default=None, description="For a clash: the survivor's own value, which it keeps."
    )


class FilledFieldRead(BaseModel):
    field: str
    value: Any
    from_customer: uuid.UUID


class MergeRead(BaseModel):
    """What a merge did (or, with dry_run, would do: nothing was written)."""

    dry_run: bool
    survivor: CustomerRead
    merged_ids: list[uuid.UUID] = Field(description="The customers merged by this request.")
    identifiers_moved: list[MergedIdentifierRead]
    identifiers_clashed: list[MergedIdentifierRead]
    fields_filled: list[FilledFieldRead]
    counts: dict[str, dict[str, int]] = Field(
        description='Records moved per domain, e.g. {"identifiers": {"moved": 3}}.'
    )


class MergeTreeNode(BaseModel):
    id: uuid.UUID
    merged_at: datetime | None = Field(description="Null for the survivor itself.")
    touchpoint: str | None
    initiator: str | None
    merged: list["MergeTreeNode"] = Field(description="Customers merged directly into this one.")


class CustomerErasedRead(BaseModel):
    id: uuid.UUID = Field(
        description="The customer erased (the survivor, if a merged id was given)."
    )
    erased_ids: list[uuid.UUID] = Field(description="It and every customer merged into it.")
    erased_at: datetime


# The dossier's sections (app/customers/dossier.py; a test keeps the two lists equal).
SectionName = Annotated[
    Literal[
        "identifiers",
        "identifier_history",
        "changelog",
        "merges",
        "devices",
        "auth_token",
        "subscriptions",
        "subscription_history",
        "actions",
        "point_balances",
        "point_transactions",
        "promo_codes",
        "prizes",
        "segments",
        "segment_history",
    ],
    SchemaName("ProfileSection"),
]


class CustomerExport(BaseModel):
    """The right-of-access document (`GET /v1/customers/{id}/export`), streamed."""

    customer: CustomerRead
    exported_at: datetime
    sections: dict[str, list[dict[str, Any]]] = Field(
        description="Every section of the profile, in full, history included."
    )


class ProfileSectionRead(BaseModel):
    items: list[dict[str, Any]] = Field(description="The latest rows, newest first.")
    href: str | None = Field(description="The endpoint with the whole list.")


class CustomerProfileRead(BaseModel):
    """The 360 view: the customer, and the latest of every record kept about it (and
    about the customers merged into it)."""

    customer: CustomerRead
    sections: dict[str, ProfileSectionRead] = Field(
        description="By name: identifiers, identifier_history, changelog, merges, devices, "
        "auth_token, subscriptions, subscription_history, actions, point_balances, "
        "point_transactions, promo_codes, prizes, segments, segment_history."
    )
