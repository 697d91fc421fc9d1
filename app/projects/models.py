"""Tenants and their API keys."""

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    default_phone_region: Mapped[str | None] = mapped_column(String(2))
    # The consent channels the project offers; null: all (app/subscriptions).
    subscription_channels: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # Which identifier wins when identifiers point at different customers; null: default.
    identifier_priority: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # Bumped by every change to custom fields or the blocklist (cache invalidation).
    rules_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        # Names identify the initiator in changelogs, so live keys of a project never share one.
        Index(
            "uq_api_keys_project_id_name",
            "project_id",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    # secret: server keys with scopes; publishable: app keys that only reach /v1/me.
    kind: Mapped[str] = mapped_column(String(16), server_default=text("'secret'"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    touchpoint: Mapped[str] = mapped_column(String(100))
    # Other touchpoints the key may name in X-Touchpoint (a backend acting for several shops).
    allowed_touchpoints: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'::text[]")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
