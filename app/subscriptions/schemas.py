"""Request and response bodies of subscriptions and topics."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schema_names import SchemaName

Channel = Annotated[
    Literal["email", "sms", "mobile_push", "web_push", "messenger"], SchemaName("Channel")
]
Status = Annotated[
    Literal["subscribed", "unsubscribed", "pending"], SchemaName("SubscriptionStatus")
]
TopicKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$", examples=["newsletter"])]
MAX_DECISIONS_PER_REQUEST = 100


class TopicCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"key": "newsletter", "name": "Weekly newsletter", "channels": ["email"]}]
        },
    )

    key: TopicKey
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=1000)] | None = None
    channels: list[Channel] | None = Field(
        default=None, min_length=1, max_length=5, description="Null: every channel."
    )


class TopicRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    name: str
    description: str | None
    channels: list[str] | None
    created_at: datetime


class SubscriptionDecision(BaseModel):
    """One decision: a status for a channel, or for one topic on a channel."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "email",
                    "topic": "newsletter",
                    "status": "pending",
                    "source": "signup-form",
                }
            ]
        },
    )

    channel: Channel
    topic: TopicKey | None = Field(default=None, description="Null: the channel as a whole.")
    status: Status = Field(
        description="`pending` starts a double opt-in; a later `subscribed` confirms it."
    )
    source: Annotated[str, Field(max_length=100)] | None = Field(
        default=None, description="Where the decision was made (a form, a call centre...)."
    )
    reason: Annotated[str, Field(max_length=500)] | None = None


class SubscriptionsUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subscriptions": [
                        {"channel": "email", "status": "subscribed", "source": "checkout"},
                        {"channel": "sms", "status": "unsubscribed", "reason": "asked by phone"},
                    ]
                }
            ]
        },
    )

    subscriptions: list[SubscriptionDecision] = Field(
        min_length=1, max_length=MAX_DECISIONS_PER_REQUEST
    )


class SubscriptionRead(BaseModel):
    channel: Channel
    topic: str | None
    status: Status
    source: str | None
    reason: str | None
    touchpoint: str
    decided_at: datetime


class SubscriptionResult(SubscriptionRead):
    previous_status: Status | None
    changed: bool


class SubscriptionChangeRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    topic: str | None
    old_status: Status | None
    new_status: Status
    source: str | None
    reason: str | None
    touchpoint: str
    initiator: str
    request_id: str | None
    created_at: datetime
