"""Identifiers owned by customers, their history (the ID changelog), and the blocklist."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id
from app.identity.kinds import MULTI_VALUED_KINDS

_MULTI_VALUED_SQL = ", ".join(f"'{kind}'" for kind in sorted(MULTI_VALUED_KINDS))


class CustomerIdentifier(Base):
    """One identifier value, owned by exactly one customer of the project."""

    __tablename__ = "customer_identifiers"
    __table_args__ = (
        # The last guard against duplicates: one owner per (project, kind, value).
        Index(
            "uq_customer_identifiers_project_id_kind_value",
            "project_id",
            "kind",
            "value",
            unique=True,
        ),
        # email, phone and each external id are single-valued per customer.
        Index(
            "uq_customer_identifiers_single_valued",
            "project_id",
            "customer_id",
            "kind",
            unique=True,
            postgresql_where=text(f"kind NOT IN ({_MULTI_VALUED_SQL})"),
        ),
        Index("ix_customer_identifiers_customer_id", "customer_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(80))
    # Long enough for a web-push endpoint URL (push_token identifiers of browsers).
    value: Mapped[str] = mapped_column(String(2048))
    touchpoint: Mapped[str] = mapped_column(String(100))
    # Set when a merge moved the identifier here: the customer it came from (for revert).
    origin_customer_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdentifierHistory(Base):
    """The ID changelog: every identifier a customer gained or lost, and why. Append-only."""

    __tablename__ = "identifier_history"
    __table_args__ = (Index("ix_identifier_history_customer_id_id", "customer_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    event: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(80))
    value: Mapped[str] = mapped_column(String(2048))
    replaced_by: Mapped[str | None] = mapped_column(String(2048))
    other_customer_id: Mapped[uuid.UUID | None] = mapped_column()
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BlockedIdentifier(Base):
    """A project's own blocklist entry: a value that never identifies anyone."""

    __tablename__ = "identifier_blocklist"
    __table_args__ = (Index("ix_identifier_blocklist_project_id", "project_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str | None] = mapped_column(String(80))
    pattern: Mapped[str] = mapped_column(String(512))
    is_regex: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
