"""Rows as the API shows them; shared by the router and by the idempotent use cases, which
store the answer they give."""

from typing import Any

from app.promotions.codes import CodeBatch
from app.promotions.models import Prize, PromoCode
from app.promotions.schemas import (
    CodeStatus,
    InvalidCode,
    PrizeRead,
    PrizeStatus,
    PromoCodeRead,
    UploadResult,
)


def code_read(code: PromoCode, pool_key: str) -> PromoCodeRead:
    status: CodeStatus = code.status  # type: ignore[assignment]
    return PromoCodeRead(
        id=code.id,
        code=code.code,
        pool=pool_key,
        status=status,
        customer_id=code.customer_id,
        origin_customer_id=code.origin_customer_id,
        issued_at=code.issued_at,
        redeemed_at=code.redeemed_at,
        order_reference=code.order_reference,
    )


def code_body(code: PromoCode, pool_key: str) -> dict[str, Any]:
    return code_read(code, pool_key).model_dump(mode="json")


def prize_read(prize: Prize) -> PrizeRead:
    status: PrizeStatus = prize.status  # type: ignore[assignment]
    return PrizeRead(
        id=prize.id,
        customer_id=prize.customer_id,
        origin_customer_id=prize.origin_customer_id,
        campaign=prize.campaign,
        prize=prize.prize,
        status=status,
        details=prize.details,
        issued_at=prize.issued_at,
        claimed_at=prize.claimed_at,
    )


def prize_body(prize: Prize) -> dict[str, Any]:
    return prize_read(prize).model_dump(mode="json")


def upload_result(batch: CodeBatch, added: int) -> UploadResult:
    return UploadResult(
        added=added,
        duplicates=batch.repeated + len(batch.codes) - added,
        invalid_count=batch.invalid_count,
        invalid=[
            InvalidCode(index=entry.index, line=entry.line, message=entry.message)
            for entry in batch.invalid
        ],
    )
