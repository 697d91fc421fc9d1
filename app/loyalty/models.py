"""Point accounts, the ledger of every change, the lots points are spent from, balances."""

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id

POINTS = Numeric(20, 4)


class PointAccount(Base):
    """A kind of points a project awards (bonus points, miles...)."""

    __tablename__ = "point_accounts"
    __table_args__ = (
        Index("uq_point_accounts_project_id_code", "project_id", "code", unique=True),
        CheckConstraint("precision BETWEEN 0 AND 4", name="precision"),
        CheckConstraint("lifetime_days IS NULL OR lifetime_days > 0", name="lifetime_days"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    # Decimal places an amount may have (0: whole points).
    precision: Mapped[int] = mapped_column(Integer)
    # Accrued points expire this many days after they become available; null: never.
    lifetime_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PointTransaction(Base):
    """One change to a balance. Never edited, except that a merge re-points it to the
    survivor (origin_customer_id keeps whose it was)."""

    __tablename__ = "point_transactions"
    __table_args__ = (
        Index("ix_point_transactions_customer_id_id", "customer_id", "id"),
        # A transaction is reversed at most once.
        Index(
            "uq_point_transactions_reverses_id",
            "reverses_id",
            unique=True,
            postgresql_where=text("reverses_id IS NOT NULL"),
        ),
        CheckConstraint(
            "type IN ('accrual', 'redemption', 'expiry', 'adjustment', 'reversal')", name="type"
        ),
        CheckConstraint("amount <> 0", name="amount"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    origin_customer_id: Mapped[uuid.UUID] = mapped_column()
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_accounts.id"))
    type: Mapped[str] = mapped_column(String(16))
    # Signed: what the transaction adds to (or takes from) the balance.
    amount: Mapped[Decimal] = mapped_column(POINTS)
    reason: Mapped[str | None] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(String(200))
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("point_transactions.id"))
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PointLot(Base):
    """The points one credit added, as they are spent (FIFO by expiry) or expire."""

    __tablename__ = "point_lots"
    __table_args__ = (
        Index(
            "ix_point_lots_spendable",
            "customer_id",
            "account_id",
            "expires_at",
            "id",
            postgresql_where=text("remaining > 0"),
        ),
        Index(
            "ix_point_lots_due",
            "expires_at",
            postgresql_where=text("remaining > 0 AND expires_at IS NOT NULL"),
        ),
        Index("ix_point_lots_pending", "available_at", postgresql_where=text("NOT released")),
        CheckConstraint("remaining >= 0", name="remaining"),
    )

    # The id of the transaction that credited the points.
    id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_transactions.id"), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_accounts.id"))
    amount: Mapped[Decimal] = mapped_column(POINTS)
    remaining: Mapped[Decimal] = mapped_column(POINTS)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # False while the points are pending (available_at in the future).
    released: Mapped[bool] = mapped_column(Boolean)


class PointSpend(Base):
    """Which lots a debit took points from: what a reversal gives back, exactly."""

    __tablename__ = "point_spends"

    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("point_transactions.id"), primary_key=True
    )
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_lots.id"), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(POINTS)


class PointBalance(Base):
    """Derived from the ledger, kept in the same transaction under this row's lock:
    available + pending always equals the sum of the customer's transactions."""

    __tablename__ = "point_balances"
    __table_args__ = (
        Index(
            "uq_point_balances_project_id_customer_id_account_id",
            "project_id",
            "customer_id",
            "account_id",
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_accounts.id"))
    available: Mapped[Decimal] = mapped_column(POINTS, server_default=text("0"))
    pending: Mapped[Decimal] = mapped_column(POINTS, server_default=text("0"))
    earned: Mapped[Decimal] = mapped_column(POINTS, server_default=text("0"))
    spent: Mapped[Decimal] = mapped_column(POINTS, server_default=text("0"))
    expired: Mapped[Decimal] = mapped_column(POINTS, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
