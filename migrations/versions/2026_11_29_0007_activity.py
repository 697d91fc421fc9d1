"""activity: action types, actions (range-partitioned by month), action external ids

The partitions live in their own schema, `activity_partitions`: only the parent table is
part of the models, and comparing the models with the database looks at `public` alone.
A DEFAULT partition catches any occurred_at outside the monthly ones, so an insert never
fails for want of a partition; `cdp activity partitions` adds months later and moves rows
out of the DEFAULT partition when it does.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITION_SCHEMA = "activity_partitions"
FIRST_MONTH = date(2025, 1, 1)
# Months created ahead of the day the migration runs.
MONTHS_AHEAD = 24


def _months(first: date, last: date) -> Iterator[date]:
    month = first
    while month <= last:
        yield month
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _partition_ddl(month: date) -> str:
    following = _add_months(month, 1)
    return (
        f"CREATE TABLE {PARTITION_SCHEMA}.actions_y{month.year:04d}m{month.month:02d} "
        f"PARTITION OF public.actions FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') "
        f"TO ('{following.isoformat()} 00:00:00+00')"
    )


def upgrade() -> None:
    op.create_table(
        "action_types",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("payload_schema", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_action_types_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_types")),
    )
    op.create_index(
        "uq_action_types_project_id_key", "action_types", ["project_id", "key"], unique=True
    )
    op.create_table(
        "action_external_ids",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("action_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_action_external_ids_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "external_id", name=op.f("pk_action_external_ids")),
    )
    # Partitioned DDL by hand: alembic's create_table knows no PARTITION BY.
    op.execute(
        """
        CREATE TABLE public.actions (
            id uuid NOT NULL,
            project_id uuid NOT NULL,
            customer_id uuid NOT NULL,
            origin_customer_id uuid NOT NULL,
            type varchar(64) NOT NULL,
            occurred_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            payload jsonb NOT NULL DEFAULT '{}'::jsonb,
            touchpoint varchar(100) NOT NULL,
            initiator varchar(100) NOT NULL,
            request_id varchar(128),
            external_id varchar(200),
            CONSTRAINT pk_actions PRIMARY KEY (occurred_at, id),
            CONSTRAINT fk_actions_project_id_projects FOREIGN KEY (project_id)
                REFERENCES public.projects (id) ON DELETE CASCADE
        ) PARTITION BY RANGE (occurred_at)
        """
    )
    op.execute(
        "CREATE INDEX ix_actions_project_id_customer_id_occurred_at_id "
        "ON public.actions (project_id, customer_id, occurred_at DESC, id DESC)"
    )
    # IF NOT EXISTS: dropping `public` (as the tests do) leaves this schema behind, empty.
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTITION_SCHEMA}")
    op.execute(
        f"CREATE TABLE {PARTITION_SCHEMA}.actions_default PARTITION OF public.actions DEFAULT"
    )
    this_month = datetime.now(UTC).date().replace(day=1)
    for month in _months(FIRST_MONTH, _add_months(this_month, MONTHS_AHEAD)):
        op.execute(_partition_ddl(month))


def downgrade() -> None:
    # Dropping the parent drops every partition with it, monthly ones added later included.
    op.execute("DROP TABLE public.actions")
    op.execute(f"DROP SCHEMA IF EXISTS {PARTITION_SCHEMA}")
    op.drop_table("action_external_ids")
    op.drop_index("uq_action_types_project_id_key", table_name="action_types")
    op.drop_table("action_types")
