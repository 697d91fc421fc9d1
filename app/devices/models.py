"""App installations and browsers registered for push, and which customers use them."""

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        Index(
            "uq_devices_project_id_installation_id", "project_id", "installation_id", unique=True
        ),
        # A push token reaches one installation: registering it elsewhere moves it.
        Index(
            "uq_devices_project_id_push_token",
            "project_id",
            "push_token",
            unique=True,
            postgresql_where=text("push_token IS NOT NULL"),
        ),
        CheckConstraint("kind IN ('mobile_app', 'web_push')", name="kind"),
        CheckConstraint("platform IN ('ios', 'android', 'huawei', 'web')", name="platform"),
        CheckConstraint(
            "push_provider IS NULL OR push_provider IN ('apns', 'fcm', 'hms', 'webpush')",
            name="push_provider",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    installation_id: Mapped[str] = mapped_column(String(128))
    app_id: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(16))
    push_provider: Mapped[str | None] = mapped_column(String(16))
    # A provider token (APNs, FCM, HMS) or, for web push, the subscription endpoint URL.
    push_token: Mapped[str | None] = mapped_column(String(2048))
    web_push_p256dh: Mapped[str | None] = mapped_column(String(128))
    web_push_auth: Mapped[str | None] = mapped_column(String(64))
    push_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    app_version: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class CustomerDevice(Base):
    """A customer seen on a device: several customers may share one (a family tablet)."""

    __tablename__ = "customer_devices"
    __table_args__ = (
        Index(
            "uq_customer_devices_project_id_customer_id_device_id",
            "project_id",
            "customer_id",
            "device_id",
            unique=True,
        ),
        Index("ix_customer_devices_device_id", "device_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    # Set when a merge moved the link here: the customer it belonged to (for revert).
    origin_customer_id: Mapped[uuid.UUID | None] = mapped_column()
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class CustomerAuthToken(Base):
    """The one token that lets an app act for a customer; only its hash is kept."""

    __tablename__ = "customer_auth_tokens"
    __table_args__ = (
        Index(
            "uq_customer_auth_tokens_project_id_customer_id",
            "project_id",
            "customer_id",
            unique=True,
        ),
        Index("uq_customer_auth_tokens_prefix", "prefix", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    prefix: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
