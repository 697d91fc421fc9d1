"""Request and response bodies of point accounts, transactions and balances."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.core.schema_names import SchemaName

AccountCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$", examples=["bonus"])]
TransactionType = Annotated[
    Literal["accrual", "redemption", "expiry", "adjustment", "reversal"],
    SchemaName("TransactionType"),
]
# Largest amount one transaction may move: far above any real balance, far below overflow.
MAX_AMOUNT = Decimal("1000000000000")


class AccountCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"code": "bonus", "name": "Bonus points", "precision": 0, "lifetime_days": 365}
            ]
        },
    )

    code: AccountCode
    name: Annotated[str, Field(min_length=1, max_length=200)]
    precision: int = Field(default=0, ge=0, le=4, description="Decimal places an amount may have.")
    lifetime_days: int | None = Field(
        default=None, gt=0, le=36500, description="Accrued points expire after; null: never."
    )


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    precision: int
    lifetime_days: int | None
    created_at: datetime


class TransactionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"account": "bonus", "type": "accrual", "amount": "120", "reference": "order-1001"},
                {"account": "bonus", "type": "redemption", "amount": "50", "reason": "checkout"},
            ]
        },
    )

    account: AccountCode
    type: Literal["accrual", "redemption", "adjustment"] = Field(
        description="Expiries and reversals are written by the service, never sent."
    )
    amount: Decimal = Field(
        description="Positive for accrual and redemption; signed for adjustment. A JSON "
        "number or a decimal string, with at most the account's precision.",
        allow_inf_nan=False,
    )
    reason: Annotated[str, Field(max_length=500)] | None = None
    reference: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="The order or other record this transaction belongs to."
    )
    available_at: AwareDatetime | None = Field(
        default=None, description="Accruals only: pending until then (e.g. after returns)."
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="Accruals only; default: available_at + the account lifetime."
    )


class TransactionRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    origin_customer_id: uuid.UUID
    account: str
    type: TransactionType
    amount: Decimal
    reason: str | None
    reference: str | None
    available_at: datetime
    expires_at: datetime | None
    reverses_id: uuid.UUID | None
    touchpoint: str
    initiator: str
    created_at: datetime


class BalanceRead(BaseModel):
    account: str
    available: Decimal = Field(description="Spendable now.")
    pending: Decimal = Field(description="Accrued, available later.")
    earned: Decimal = Field(description="All accruals, net of their reversals.")
    spent: Decimal = Field(description="All redemptions, net of their reversals.")
    expired: Decimal
