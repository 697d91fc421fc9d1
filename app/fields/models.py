"""Custom field definitions: the extra, typed attributes a project gives its customers."""

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id


class CustomField(Base):
    __tablename__ = "custom_fields"
    __table_args__ = (
        # Leads with project_id, so it also serves the foreign key and every per-project query.
        UniqueConstraint("project_id", "entity", "key"),
        # The checks repeat the API's rules: values are validated against these rows forever.
        CheckConstraint("entity IN ('customer')", name="entity"),
        CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,63}$'", name="key"),
        CheckConstraint(
            "type IN ('string', 'integer', 'decimal', 'boolean', 'date', 'datetime', 'enum', "
            "'unique_id')",
            name="type",
        ),
        CheckConstraint(
            "CASE WHEN type = 'enum' THEN coalesce(cardinality(enum_values), 0) > 0 "
            "ELSE enum_values IS NULL END",
            name="enum_values",
        ),
        CheckConstraint(
            "max_length IS NULL OR (type = 'string' AND max_length BETWEEN 1 AND 10000)",
            name="max_length",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    enum_values: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # Null: string values get DEFAULT_STRING_MAX_LENGTH (app/fields/values.py).
    max_length: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
