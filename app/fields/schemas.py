"""Request and response bodies of custom field definitions."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.fields.values import MAX_STRING_MAX_LENGTH, FieldEntity, FieldType

FieldKey = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="Lower-case letters, digits and `_`, starting with a letter; at most 64.",
        examples=["loyalty_tier"],
    ),
]
EnumValue = Annotated[str, Field(min_length=1, max_length=200)]


class FieldCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "loyalty_tier",
                    "label": "Loyalty tier",
                    "type": "enum",
                    "enum_values": ["bronze", "silver", "gold"],
                },
                {"key": "nickname", "type": "string", "max_length": 50},
                {"key": "crm_id", "label": "CRM id", "type": "unique_id"},
            ]
        },
    )

    entity: FieldEntity = Field(
        default=FieldEntity.CUSTOMER, description="The kind of record the field extends."
    )
    key: FieldKey
    label: str | None = Field(
        default=None, min_length=1, max_length=200, description="A name for people."
    )
    type: FieldType = Field(
        description="`unique_id` values are identifiers: `identifiers.external.<key>`."
    )
    enum_values: list[EnumValue] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The allowed values; required for `enum` fields, refused for others.",
    )
    max_length: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STRING_MAX_LENGTH,
        description="Longest value in characters; `string` fields only; default 1000.",
    )


class FieldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    entity: FieldEntity
    key: str
    label: str | None
    type: FieldType
    enum_values: list[str] | None
    max_length: int | None = Field(description="Null on a `string` field: 1000 applies.")
    created_at: datetime
