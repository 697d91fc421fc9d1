"""Bodies of the identifier blocklist endpoints."""

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.identity.blocklist import MAX_PATTERN_LENGTH


class BlocklistEntryCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "email", "pattern": "qa@acme.example"},
                {"kind": "discount_card", "pattern": "^TEST-", "is_regex": True},
            ]
        },
    )

    kind: str | None = Field(
        default=None,
        max_length=80,
        pattern=r"^(email|phone|discount_card|app_installation|push_token|external:[a-z][a-z0-9_]*)$",
        description="The identifier kind it applies to; null: every kind.",
    )
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_LENGTH)
    is_regex: bool = Field(
        default=False,
        description="A regular expression searched case-insensitively; else an exact, "
        "case-insensitive value, compared as sent and as normalised.",
    )


class BlocklistEntryRead(BaseModel):
    id: uuid.UUID | None = Field(description="Null for built-in entries, which cannot be removed.")
    kind: str | None
    pattern: str
    is_regex: bool
    source: Literal["default", "project"]
