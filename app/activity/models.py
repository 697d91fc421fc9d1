"""Action types (declared event kinds with a payload schema) and the actions themselves.

`actions` is range-partitioned by month on `occurred_at` (migration 0007 creates the
partitions, `cdp activity partitions` adds more), so it can grow without bound; the
partitions live in their own schema, outside the models.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.ids import new_id

ACTION_TYPE_KEY_MAX = 64
EXTERNAL_ID_MAX = 200


class ActionType(Base):
    __tablename__ = "action_types"
    __table_args__ = (Index("uq_action_types_project_id_key", "project_id", "key", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(ACTION_TYPE_KEY_MAX))
    description: Mapped[str | None] = mapped_column(String(500))
    payload_schema: Mapped[Any] = mapped_column(JSONB)
    # Moves whenever payload_schema is replaced: compiled validators are cached by it.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Action(Base):
    __tablename__ = "actions"
    __table_args__ = (
        # A primary key of a partitioned table must contain the partition key.
        PrimaryKeyConstraint("occurred_at", "id", name="pk_actions"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # No foreign key: ingest has locked the live customer row in its own transaction, so a
    # key check per inserted row (on every partition) would guard nothing more.
    customer_id: Mapped[uuid.UUID] = mapped_column()
    # The customer the action was recorded for; a merge moves customer_id, never this.
    origin_customer_id: Mapped[uuid.UUID] = mapped_column()
    type: Mapped[str] = mapped_column(String(ACTION_TYPE_KEY_MAX))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    payload: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    touchpoint: Mapped[str] = mapped_column(String(100))
    initiator: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(128))
    external_id: Mapped[str | None] = mapped_column(String(EXTERNAL_ID_MAX))


# The feed reads one customer's actions newest first, keyset-paginated on (occurred_at, id).
Index(
    "ix_actions_project_id_customer_id_occurred_at_id",
    Action.project_id,
    Action.customer_id,
    Action.occurred_at.desc(),
    Action.id.desc(),
)


class ActionExternalId(Base):
    """The caller's id of an action, unique per project.

    A separate, plain table: a unique index on the partitioned `actions` would have to
    include occurred_at, which would let the same external id be stored twice.
    """

    __tablename__ = "action_external_ids"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_MAX), primary_key=True)
    action_id: Mapped[uuid.UUID] = mapped_column()
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
