"""Consent per customer, channel and topic, with every decision kept."""

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id

# The channel-level decision (no topic) is stored with topic '' so the unique key has no
# NULL in it; the API shows it as null.
NO_TOPIC = ""
_STATUSES = "('subscribed', 'unsubscribed', 'pending')"


class SubscriptionTopic(Base):
    __tablename__ = "subscription_topics"
    __table_args__ = (
        Index("uq_subscription_topics_project_id_key", "project_id", "key", unique=True),
        CheckConstraint("key ~ '^[a-z][a-z0-9_.-]{0,63}$'", name="key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    # The channels this topic is offered on; null: every channel of the project.
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Subscription(Base):
    """The current decision of one customer for one channel (and topic)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        Index(
            "uq_subscriptions_project_id_customer_id_channel_topic",
            "project_id",
            "customer_id",
            "channel",
            "topic",
            unique=True,
        ),
        # The customer search's `subscription=email:subscribed`: who holds a status, without
        # probing every customer's own rows (the unique index above leads with the customer).
        Index(
            "ix_subscriptions_project_id_channel_topic_status",
            "project_id",
            "channel",
            "topic",
            "status",
            "customer_id",
        ),
        CheckConstraint(f"status IN {_STATUSES}", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(64), server_default=text("''"))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500))
    touchpoint: Mapped[str] = mapped_column(String(100))
    # Set when a merge moved the decision here: the customer it was made by (for revert).
    origin_customer_id: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubscriptionChange(Base):
    """Every decision ever made, append-only (a trigger enforces it)."""

    __tablename__ = "subscription_history"
    __table_args__ = (
        Index("ix_subscription_history_customer_id_id", "customer_id", "id"),
        CheckConstraint(f"new_status IN {_STATUSES}", name="new_status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(64))
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500))
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
