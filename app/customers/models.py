"""The customer profile row. Identifiers live in identity's table, history in the changelogs."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id

CUSTOMER_STATUSES = ("active", "merged", "erased")
GENDERS = ("female", "male", "unknown")


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'merged', 'erased')", name="status"),
        CheckConstraint("gender IN ('female', 'male', 'unknown')", name="gender"),
        # A tombstone always points at its survivor; a live customer never does.
        CheckConstraint("(status = 'merged') = (merged_into IS NOT NULL)", name="merged_into"),
        Index("ix_customers_project_id_id", "project_id", "id", unique=True),
        # Also the keyset of `sort=updated_at` (ties broken by id) and of updated_since.
        Index("ix_customers_project_id_updated_at_id", "project_id", "updated_at", "id"),
        Index("ix_customers_project_id_created_at", "project_id", "created_at"),
        # The merge tree: who was merged directly into whom.
        Index(
            "ix_customers_merged_into",
            "merged_into",
            postgresql_where=text("merged_into IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'active'"))
    # The customer this one was merged into. A tombstone is never written again, so a
    # merge locks only live customers; reads follow the chain (A into B, B into C).
    merged_into: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    middle_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(16))
    area: Mapped[str | None] = mapped_column(String(200))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# The expressions the customer search filters and sorts on. The repository builds its
# query from these very objects: PostgreSQL uses an expression index only for a query that
# repeats its expression exactly.
LOWER_NAMES = {
    "first_name": func.lower(Customer.first_name),
    "last_name": func.lower(Customer.last_name),
    "middle_name": func.lower(Customer.middle_name),
}
LOWER_AREA = func.lower(Customer.area)
# A customer without a last name sorts as '' (first in `last_name`, last in `-last_name`):
# a keyset over a nullable column would need a NULL case in every page condition.
LAST_NAME_SORT_KEY = func.coalesce(Customer.last_name, literal_column("''"))

# Prefix matches (`name`): text_pattern_ops orders by bytes, so `LIKE 'ann%'` becomes an
# index range whatever the database's collation (a default btree serves LIKE only under C).
for _name, _lower in LOWER_NAMES.items():
    Index(
        f"ix_customers_project_id_lower_{_name}",
        Customer.project_id,
        _lower.label(f"lower_{_name}"),
        postgresql_ops={f"lower_{_name}": "text_pattern_ops"},
    )
# Equality filters lead, id follows: a page of `gender=female` in id order is one ordered
# index range, with no sort and no scan past the page.
Index("ix_customers_project_id_gender_id", Customer.project_id, Customer.gender, Customer.id)
Index("ix_customers_project_id_lower_area_id", Customer.project_id, LOWER_AREA, Customer.id)
Index("ix_customers_project_id_birth_date", Customer.project_id, Customer.birth_date)
Index(
    "ix_customers_project_id_last_name_sort",
    Customer.project_id,
    LAST_NAME_SORT_KEY,
    Customer.id,
)
# `custom=key:value` is a containment test (custom_fields @> {"key": value}); jsonb_path_ops
# indexes each key/value pair, whatever the project's fields are.
Index(
    "ix_customers_custom_fields",
    Customer.custom_fields,
    postgresql_using="gin",
    postgresql_ops={"custom_fields": "jsonb_path_ops"},
)


class CustomerMerge(Base):
    """One source merged into a target: the merge tree's edges, with what moved (for revert)."""

    __tablename__ = "customer_merges"
    __table_args__ = (
        Index("ix_customer_merges_project_id_target_id", "project_id", "target_id"),
        Index("uq_customer_merges_project_id_source_id", "project_id", "source_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    target_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
