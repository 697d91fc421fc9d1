"""Request and response bodies of promo pools, promo codes and prizes."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import UploadFile
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.core.json_size import json_size
from app.core.schema_names import RESPONSE_MODEL_CONFIG, SchemaName

POOL_KEY_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
PoolKey = Annotated[str, Field(pattern=POOL_KEY_PATTERN, examples=["black-friday-2026"])]
CodeStatus = Annotated[
    Literal["available", "issued", "redeemed", "void"], SchemaName("PromoCodeStatus")
]
PrizeStatus = Annotated[Literal["issued", "claimed"], SchemaName("PrizeStatus")]
# One upload: as JSON while it fits the request body limit, else as a file (…/codes/file).
MAX_CODES_PER_UPLOAD = 100_000
# Invalid entries are all counted, but only this many listed in the answer.
MAX_INVALID_LISTED = 1000
MAX_PRIZE_DETAILS_BYTES = 16 * 1024
# 100,000 codes of the longest length with CRLF line breaks, plus the multipart framing:
# above the general body limit (CDP_MAX_BODY_BYTES), so the file route has its own.
MAX_CODE_FILE_BYTES = 8 * 1024 * 1024


class PoolCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "black-friday-2026",
                    "name": "Black Friday 2026: 20% off",
                    "valid_from": "2026-11-27T00:00:00Z",
                    "valid_until": "2026-12-01T00:00:00Z",
                }
            ]
        },
    )

    key: PoolKey
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=1000)] | None = None
    valid_from: AwareDatetime | None = Field(
        default=None, description="No code is issued or redeemed before; null: no start."
    )
    valid_until: AwareDatetime | None = Field(
        default=None, description="No code is issued or redeemed from then on; null: no end."
    )

    @field_validator("valid_until")
    @classmethod
    def _window_is_ordered(
        cls, valid_until: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        valid_from = info.data.get("valid_from")
        if valid_until is not None and valid_from is not None and valid_from >= valid_until:
            raise ValueError("valid_until must be after valid_from")
        return valid_until


class PoolRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    name: str
    description: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime


class PoolCounts(BaseModel):
    available: int
    issued: int
    redeemed: int
    void: int


class PoolDetail(PoolRead):
    codes: PoolCounts = Field(description="How many codes the pool holds, per status.")


class CodesUpload(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"codes": ["BF26-7KQ2-XM4P", "BF26-9TZC-2LWD"]}]},
    )

    codes: list[str] = Field(
        min_length=1,
        max_length=MAX_CODES_PER_UPLOAD,
        description="1 to 64 characters each, no whitespace, control characters or `/`; "
        "surrounding whitespace is trimmed. Invalid entries are reported, the others stored.",
    )


class CodeFileUpload(BaseModel):
    """multipart/form-data with one part, `file`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"file": "code\nBF26-7KQ2-XM4P\n"}]}
    )

    file: UploadFile = Field(
        description=f"CSV or plain text, UTF-8, one code per line (at most "
        f"{MAX_CODES_PER_UPLOAD}; no quoting), optionally under a header line `code`. The "
        f"request may be up to {MAX_CODE_FILE_BYTES} bytes, above the general body limit."
    )


class InvalidCode(BaseModel):
    model_config = RESPONSE_MODEL_CONFIG

    index: int | None = Field(default=None, description="Position in `codes` (JSON uploads).")
    line: int | None = Field(default=None, description="Line number, from 1 (file uploads).")
    message: str


class UploadResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "added": 99_997,
                    "duplicates": 2,
                    "invalid_count": 1,
                    "invalid": [{"index": 17, "line": None, "message": "Contains whitespace"}],
                }
            ]
        }
    )

    added: int = Field(description="New codes stored in the pool.")
    duplicates: int = Field(
        description="Entries not stored because the project already has the code (in any "
        "pool) or the upload repeats it."
    )
    invalid_count: int = Field(description="Entries refused as not a valid code.")
    invalid: list[InvalidCode] = Field(
        description=f"The first {MAX_INVALID_LISTED} refused entries and why."
    )


class CodeIssue(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"pool": "black-friday-2026"}]}
    )

    pool: PoolKey


class CodeRedeem(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"customer_id": "0193a6f1-c1e2-7c3c-9e1f-4b3c2a1d0e9f", "order_reference": "A-1001"}
            ]
        },
    )

    customer_id: uuid.UUID = Field(
        description="The customer redeeming: the code must have been issued to them (or to a "
        "customer since merged into them)."
    )
    order_reference: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class PromoCodeRead(BaseModel):
    id: uuid.UUID
    code: str
    pool: str
    status: CodeStatus
    customer_id: uuid.UUID | None
    origin_customer_id: uuid.UUID | None = Field(
        description="The customer it was issued to (differs from customer_id after a merge)."
    )
    issued_at: datetime | None
    redeemed_at: datetime | None
    order_reference: str | None


# Free-form: one named component, so a generated client has a `PrizeDetails` class.
PrizeDetails = Annotated[dict[str, Any], SchemaName("PrizeDetails")]


class PrizeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "campaign": "summer-wheel-2026",
                    "prize": "Free coffee",
                    "details": {"store": "Berlin Mitte", "size": "large"},
                }
            ]
        },
    )

    campaign: Annotated[str, Field(min_length=1, max_length=100)]
    prize: Annotated[str, Field(min_length=1, max_length=200)]
    details: PrizeDetails | None = Field(
        default=None, description=f"Any JSON object, at most {MAX_PRIZE_DETAILS_BYTES} bytes."
    )

    @field_validator("details")
    @classmethod
    def _details_fit(cls, details: dict[str, Any] | None) -> dict[str, Any] | None:
        if details is not None and json_size(details) > MAX_PRIZE_DETAILS_BYTES:
            raise ValueError(f"details must be at most {MAX_PRIZE_DETAILS_BYTES} bytes as JSON")
        return details


class PrizeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    origin_customer_id: uuid.UUID = Field(
        description="The customer it was given to (differs from customer_id after a merge)."
    )
    campaign: str
    prize: str
    status: PrizeStatus
    details: PrizeDetails | None
    issued_at: datetime
    claimed_at: datetime | None
