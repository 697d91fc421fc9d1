"""Request and response bodies of action types, actions and the customer feed."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from app.activity.models import ACTION_TYPE_KEY_MAX, EXTERNAL_ID_MAX
from app.activity.payloads import PAYLOAD_MAX_BYTES
from app.core.json_size import json_size
from app.core.schema_names import RESPONSE_MODEL_CONFIG, SchemaName
from app.customers.schemas import IdentifiersIn

ACTION_TYPE_KEY_PATTERN = rf"^[a-z][a-z0-9_.]{{0,{ACTION_TYPE_KEY_MAX - 1}}}$"
# Actions the service derives itself (profile, consent, merges, points) carry this prefix.
SYSTEM_PREFIX = "system."
MAX_BATCH_ACTIONS = 1000
# Clocks drift and time zones get mixed up; further ahead is a bug in the sender.
MAX_FUTURE = timedelta(days=1)


def _not_reserved(key: str) -> str:
    if key.startswith(SYSTEM_PREFIX):
        raise ValueError(f"the prefix `{SYSTEM_PREFIX}` is reserved for actions of the service")
    return key


ActionTypeKey = Annotated[
    str,
    Field(
        pattern=ACTION_TYPE_KEY_PATTERN,
        description="Lower-case letters, digits, `_` and `.`; `system.` is reserved.",
        examples=["order.placed"],
    ),
    AfterValidator(_not_reserved),
]
Description = Annotated[str, Field(max_length=500)]
PayloadSchema = Annotated[
    dict[str, Any],
    Field(
        description="A JSON Schema (draft 2020-12) every payload of this type must match; "
        "`$ref` only within the schema, `format` is an annotation (not checked)."
    ),
    SchemaName("PayloadSchema"),
]

_ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
    "required": ["order_id", "total"],
}
_ACTION_EXAMPLE: dict[str, Any] = {
    "customer": {"email": "jane.doe@example.com"},
    "type": "order.placed",
    "occurred_at": "2026-11-29T10:15:00Z",
    "payload": {"order_id": "A-1001", "total": 59.9, "currency": "EUR"},
    "external_id": "order-A-1001",
}


class ActionTypeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "order.placed",
                    "description": "An order was placed in the shop.",
                    "payload_schema": _ORDER_SCHEMA,
                }
            ]
        },
    )

    key: ActionTypeKey
    description: Description | None = None
    payload_schema: PayloadSchema = Field(default_factory=dict)


class ActionTypePatch(BaseModel):
    """A merge patch: a new `payload_schema` replaces the old one and moves `version`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"payload_schema": {**_ORDER_SCHEMA, "required": ["order_id"]}}]
        },
    )

    description: Description | None = None
    payload_schema: PayloadSchema | None = None


class ActionTypeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    description: str | None
    payload_schema: dict[str, Any]
    version: int = Field(description="Moves each time the payload schema is replaced.")
    created_at: datetime
    updated_at: datetime


class ActionCreate(BaseModel):
    """One action: who (any identifier or the id), what (type and payload) and when."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_ACTION_EXAMPLE]})

    customer: IdentifiersIn = Field(
        description="The customer, by `customer_id` or any identifier (all must agree)."
    )
    create_customer: bool = Field(
        default=False,
        description="Create the customer (as identify would) when nobody has these identifiers.",
    )
    type: ActionTypeKey
    occurred_at: AwareDatetime = Field(description="RFC 3339 with offset; at most a day ahead.")
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Must match the type's payload schema; at most {PAYLOAD_MAX_BYTES} bytes.",
    )
    external_id: Annotated[str, Field(min_length=1, max_length=EXTERNAL_ID_MAX)] | None = Field(
        default=None,
        description="Your id of the action: sent again, it is stored once (same body) or "
        "refused with 409 (other body).",
    )

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime) -> datetime:
        if value > datetime.now(UTC) + MAX_FUTURE:
            raise ValueError("must not be more than one day in the future")
        return value

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if json_size(value) > PAYLOAD_MAX_BYTES:
            raise ValueError(f"must be at most {PAYLOAD_MAX_BYTES} bytes as JSON")
        return value


class ActionBatchCreate(BaseModel):
    """Up to 1000 actions; each is checked on its own, so bad ones do not stop good ones."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"actions": [_ACTION_EXAMPLE]}]}
    )

    # Items are read one by one in the service (a bad item is reported, not fatal), so
    # the envelope takes plain objects and documents them as ActionCreate.
    actions: Annotated[
        list[dict[str, Any]],
        Field(min_length=1, max_length=MAX_BATCH_ACTIONS),
        WithJsonSchema(
            {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ActionCreate"},
                "minItems": 1,
                "maxItems": MAX_BATCH_ACTIONS,
            }
        ),
    ]


class ActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID = Field(description="The customer it belongs to now (after merges).")
    origin_customer_id: uuid.UUID = Field(description="The customer it was recorded for.")
    type: str
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any]
    touchpoint: str
    initiator: str
    external_id: str | None
    system: bool = Field(
        description="True for `system.*` actions: changes the service recorded itself."
    )


class ActionItemError(BaseModel):
    pointer: str = Field(description="RFC 6901 JSON pointer into the request body.")
    message: str


BatchItemStatus = Literal["stored", "duplicate", "rejected"]


class ActionBatchItemResult(BaseModel):
    model_config = RESPONSE_MODEL_CONFIG

    index: int = Field(description="Position of the action in the request.")
    status: BatchItemStatus = Field(
        description="`stored`; `duplicate` (its external_id was stored before, same body); "
        "`rejected` (see `errors`; nothing of it was stored)."
    )
    id: uuid.UUID | None = Field(default=None, description="The stored action's id.")
    errors: list[ActionItemError] = Field(default_factory=list)


class ActionBatchRead(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    items: list[ActionBatchItemResult]
