"""Promo code pools, their codes, and prizes given to customers."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id

CODE_STATUSES = ("available", "issued", "redeemed", "void")
PRIZE_STATUSES = ("issued", "claimed")


class PromoPool(Base):
    """A set of codes of one promotion, issued one per request."""

    __tablename__ = "promo_pools"
    __table_args__ = (
        Index("uq_promo_pools_project_id_key", "project_id", "key", unique=True),
        CheckConstraint("key ~ '^[a-z][a-z0-9_.-]{0,63}$'", name="key"),
        CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until",
            name="validity",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    # Codes are issued (and redeemed) only inside this window; null: open on that side.
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PromoCode(Base):
    __tablename__ = "promo_codes"
    __table_args__ = (
        Index("uq_promo_codes_project_id_code", "project_id", "code", unique=True),
        # The issuing query walks this: the next free code of a pool, oldest first.
        Index(
            "ix_promo_codes_available",
            "pool_id",
            "id",
            postgresql_where=text("status = 'available'"),
        ),
        Index("ix_promo_codes_pool_id_status", "pool_id", "status"),
        Index(
            "ix_promo_codes_customer_id_issued_at",
            "customer_id",
            "issued_at",
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        CheckConstraint("status IN ('available', 'issued', 'redeemed', 'void')", name="status"),
        CheckConstraint(
            "(status = 'available' AND customer_id IS NULL AND issued_at IS NULL) "
            "OR (status IN ('issued', 'redeemed') AND customer_id IS NOT NULL "
            "AND issued_at IS NOT NULL) OR status = 'void'",
            name="issued",
        ),
        CheckConstraint("(status = 'redeemed') = (redeemed_at IS NOT NULL)", name="redeemed"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("promo_pools.id"))
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'available'"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    # The customer the code was issued to; a merge moves customer_id, never this.
    origin_customer_id: Mapped[uuid.UUID | None] = mapped_column()
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    order_reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Prize(Base):
    """A prize a customer won in a campaign; claimed once."""

    __tablename__ = "prizes"
    __table_args__ = (
        Index("ix_prizes_customer_id_id", "customer_id", "id"),
        CheckConstraint("status IN ('issued', 'claimed')", name="status"),
        CheckConstraint("(status = 'claimed') = (claimed_at IS NOT NULL)", name="claimed"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    # The customer it was given to; a merge moves customer_id, never this.
    origin_customer_id: Mapped[uuid.UUID] = mapped_column()
    campaign: Mapped[str] = mapped_column(String(100))
    prize: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'issued'"))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
