"""Segmentations (sets of mutually exclusive segments), membership and its history."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id


class Segmentation(Base):
    __tablename__ = "segmentations"
    __table_args__ = (
        Index("uq_segmentations_project_id_key", "project_id", "key", unique=True),
        CheckConstraint("kind IN ('manual', 'rule')", name="kind"),
        CheckConstraint(
            "recalculate_every_minutes IS NULL OR recalculate_every_minutes > 0",
            name="recalculate_every_minutes",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    # Rule segmentations only: recalculated on this schedule; null: on demand only.
    recalculate_every_minutes: Mapped[int | None] = mapped_column(Integer)
    last_recalculated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (
        Index("uq_segments_segmentation_id_key", "segmentation_id", "key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    segmentation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("segmentations.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    # Evaluation order: a customer belongs to the first segment whose rule matches.
    position: Mapped[int] = mapped_column(Integer)
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class SegmentMembership(Base):
    """Current membership: at most one segment per customer and segmentation."""

    __tablename__ = "segment_memberships"
    __table_args__ = (
        Index(
            "uq_segment_memberships_segmentation_id_customer_id",
            "segmentation_id",
            "customer_id",
            unique=True,
        ),
        Index("ix_segment_memberships_segment_id", "segment_id"),
        Index("ix_segment_memberships_customer_id", "customer_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    segmentation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("segmentations.id", ondelete="CASCADE")
    )
    segment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    # No foreign key to customers: a recalculation writes a membership row per customer,
    # and a key check per row would lock a million customer rows. Customers are never
    # deleted (erasure keeps the row), so the key would guard nothing.
    customer_id: Mapped[uuid.UUID] = mapped_column()
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SegmentChange(Base):
    """Every entry and exit, kept for good (and across merges)."""

    __tablename__ = "segment_history"
    __table_args__ = (
        Index("ix_segment_history_customer_id_id", "customer_id", "id"),
        CheckConstraint("event IN ('added', 'removed')", name="event"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # No foreign key to customers, for the same reason as memberships.
    customer_id: Mapped[uuid.UUID] = mapped_column()
    segmentation_id: Mapped[uuid.UUID] = mapped_column()
    segment_id: Mapped[uuid.UUID] = mapped_column()
    event: Mapped[str] = mapped_column(String(16))
    # The recalculation that decided it; null for manual changes.
    recalculation_id: Mapped[uuid.UUID | None] = mapped_column()
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
