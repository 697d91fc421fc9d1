"""Request and response bodies of segmentations, segments, membership and history."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schema_names import SchemaName
from app.customers.schemas import IdentifiersIn
from app.segments.rule_schema import RULE_REFERENCE

SegmentationKind = Annotated[Literal["manual", "rule"], SchemaName("SegmentationKind")]

SegmentKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$", examples=["champions"])]
MAX_SEGMENTS = 50
MAX_MEMBER_CHANGES = 10_000

RULE_DESCRIPTION = (
    "A JSON condition over one customer: {all: [...]}, {any: [...]}, {not: rule}, or a "
    "condition on profile, custom_field, identifier, subscription, points, action, device "
    "or in_segment (schema SegmentRule, docs/api.md); checked when saved (422 with a pointer)."
)
RULE_EXAMPLE: dict[str, Any] = {
    "all": [
        {"action": "purchase", "count": {"op": "gte", "value": 2}, "within_days": 30},
        {"subscription": {"channel": "email"}, "status": "subscribed"},
    ]
}


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: SegmentKey
    name: Annotated[str, Field(min_length=1, max_length=200)]
    rule: Annotated[dict[str, Any], RULE_REFERENCE] | None = Field(
        default=None,
        description=RULE_DESCRIPTION + " Required in rule segmentations, absent in manual ones.",
        examples=[RULE_EXAMPLE],
    )


class SegmentationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "activity",
                    "name": "Buying activity",
                    "kind": "rule",
                    "recalculate_every_minutes": 60,
                    "segments": [{"key": "active", "name": "Active buyers", "rule": RULE_EXAMPLE}],
                }
            ]
        },
    )

    key: SegmentKey
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: SegmentationKind
    recalculate_every_minutes: int | None = Field(default=None, gt=0, le=525_600)
    segments: list[SegmentIn] = Field(
        min_length=1,
        max_length=MAX_SEGMENTS,
        description="Mutually exclusive: a customer is in the first segment whose rule matches.",
    )


class SegmentationPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"recalculate_every_minutes": 30}]}
    )

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    recalculate_every_minutes: int | None = Field(default=None, gt=0, le=525_600)
    segments: list[SegmentIn] | None = Field(default=None, min_length=1, max_length=MAX_SEGMENTS)


class SegmentRead(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    position: int
    rule: Annotated[dict[str, Any], RULE_REFERENCE] | None
    members: int


class SegmentationRead(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    kind: SegmentationKind
    recalculate_every_minutes: int | None
    last_recalculated_at: datetime | None
    segments: list[SegmentRead]
    created_at: datetime
    updated_at: datetime


class MemberChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment: SegmentKey | None = Field(description="The segment to put the customer in; null: out.")
    customer: IdentifiersIn = Field(description="The customer, by id or any identifier.")


class MembersUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "changes": [
                        {"segment": "vip", "customer": {"email": "jane@example.com"}},
                        {
                            "segment": None,
                            "customer": {"customer_id": "01a22741-9713-75ce-bc96-01a8de0d14c8"},
                        },
                    ]
                }
            ]
        },
    )

    changes: list[MemberChange] = Field(min_length=1, max_length=MAX_MEMBER_CHANGES)


class MembersResult(BaseModel):
    added: int
    removed: int
    unchanged: int


class RecalculationStarted(BaseModel):
    job_id: uuid.UUID = Field(description="Follow it at GET /v1/jobs/{job_id}.")


class CustomerSegmentRead(BaseModel):
    segmentation: str
    segment: str
    since: datetime


class SegmentChangeRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID = Field(description="Whose membership it was (a merged customer's too).")
    segmentation_id: uuid.UUID
    segment_id: uuid.UUID
    event: Literal["added", "removed"]
    recalculation_id: uuid.UUID | None
    touchpoint: str
    initiator: str
    created_at: datetime


class SegmentMemberRead(BaseModel):
    customer_id: uuid.UUID
    since: datetime
