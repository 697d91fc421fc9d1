"""Identifiers owned by customers, their history (the ID changelog), and the blocklist."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, func, literal_column, text
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

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
        # Prefix search (`identifier_kind` + `identifier_prefix`, e.g. phones starting +4930):
        # the unique index above uses the database collation, under which LIKE 'x%' is no
        # index range (only the C collation allows it); text_pattern_ops compares bytes.
        # customer_id makes it covering: the matches' owners without a heap fetch each.
        Index(
            "ix_customer_identifiers_project_id_kind_value_pattern",
            "project_id",
            "kind",
            "value",
            "customer_id",
            postgresql_ops={"value": "text_pattern_ops"},
        ),
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


def email_domain(value: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[str]:
    """The domain of an email identifier's value (normalised emails hold exactly one "@":
    quoted local parts are refused). The literals are inlined, not bound: PostgreSQL
    matches a query's expression to an index's only when they are spelled the same."""
    return func.split_part(value, literal_column("'@'"), literal_column("2"))


# The customer search's `email_domain`. Not partial (WHERE kind = 'email'): the planner
# reads an index expression's statistics only from an index without a predicate, and
# without them it guesses 0.5% for every domain (then walks a million customers for a
# domain that 100 of them have). customer_id last: a domain's customers come in id
# order, so a page in id order is read straight off the index.
Index(
    "ix_customer_identifiers_email_domain",
    CustomerIdentifier.project_id,
    CustomerIdentifier.kind,
    email_domain(CustomerIdentifier.value),
    CustomerIdentifier.customer_id,
)
