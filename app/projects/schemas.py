"""Request and response bodies of projects and API keys."""

import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.core.auth import Scope
from app.core.schema_names import SchemaName
from app.identity.normalize import supported_phone_region
from app.subscriptions.schemas import Channel

ProjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Lower-case letters, digits, `-` and `_`.",
        examples=["acme-shop"],
    ),
]
PhoneRegion = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 region for phone numbers written without a country code.",
        examples=["DE"],
    ),
    AfterValidator(supported_phone_region),
]
KeyName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:-]*$",
        examples=["checkout-service"],
    ),
]
Touchpoint = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:-]*$",
        examples=["web-shop"],
    ),
]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "acme-shop"}]}
    )

    name: ProjectName
    default_phone_region: PhoneRegion | None = None


KeyKind = Annotated[Literal["secret", "publishable"], SchemaName("KeyKind")]
PriorityGroup = Annotated[
    Literal["customer_id", "external", "discount_card", "phone", "email", "device"],
    SchemaName("PriorityGroup"),
]


def _distinct(items: list[str] | None) -> list[str] | None:
    if items is not None and len(set(items)) != len(items):
        raise ValueError("each value at most once")
    return items


class ProjectUpdate(BaseModel):
    """A merge patch of the project's settings: fields left out keep their value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "default_phone_region": "DE",
                    "identifier_priority": ["external", "customer_id", "phone", "email"],
                }
            ]
        },
    )

    default_phone_region: PhoneRegion | None = None
    identifier_priority: Annotated[list[PriorityGroup] | None, AfterValidator(_distinct)] = Field(
        default=None,
        max_length=6,
        description="Which match wins when identifiers point at different customers, "
        "strongest first; groups left out rank last. Null: the default order "
        "customer_id > external > discount_card > phone > email > device.",
    )
    subscription_channels: Annotated[list[Channel] | None, AfterValidator(_distinct)] = Field(
        default=None,
        min_length=1,
        max_length=5,
        description="The consent channels the project offers; null: all five.",
    )


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    default_phone_region: str | None = Field(
        description="Null: the service's CDP_DEFAULT_PHONE_REGION applies."
    )
    identifier_priority: list[str] | None = Field(
        description="Null: the default order (see PATCH)."
    )
    subscription_channels: list[str] | None = Field(description="Null: all channels.")
    created_at: datetime
    updated_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "checkout-service",
                    "scopes": ["customers:read", "customers:write"],
                    "touchpoint": "web-shop",
                }
            ]
        },
    )

    name: KeyName
    kind: KeyKind = Field(
        default="secret",
        description="`secret`: a server key with scopes. `publishable`: ships inside an app, "
        "has no scopes and reaches only /v1/me (with a customer's token).",
    )
    scopes: list[Scope] = Field(
        default_factory=list, max_length=len(Scope), description="Required for secret keys."
    )
    touchpoint: Touchpoint | None = Field(
        default=None, description="Point of contact recorded in changelogs; defaults to the name."
    )
    allowed_touchpoints: list[Touchpoint] = Field(
        default_factory=list,
        max_length=50,
        description="Other touchpoints this key may name in the `X-Touchpoint` header.",
    )
    expires_at: datetime | None = Field(
        default=None, description="After this instant the key is refused (RFC 3339, with offset)."
    )

    @model_validator(mode="after")
    def _scopes_fit_the_kind(self) -> Self:
        if self.kind == "secret" and not self.scopes:
            raise ValueError("a secret key needs at least one scope")
        if self.kind == "publishable" and self.scopes:
            raise ValueError("a publishable key has no scopes")
        return self


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    kind: KeyKind
    prefix: str = Field(description="The clear part of the key, to tell keys apart.")
    scopes: list[Scope]
    touchpoint: str
    allowed_touchpoints: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(
        description="The key itself. Shown only in this response; store it now.",
        examples=["cdp_3f9a1c2b7d4e_6b1f0c..."],
    )


class ProjectCreated(ProjectRead):
    admin_key: ApiKeyCreated = Field(description="The new project's first key, scope `admin`.")
