"""merges: merge records, identifier origins, identifier priority, idempotency keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "response", postgresql.JSON(none_as_null=True, astext_type=sa.Text()), nullable=True
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_idempotency_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "uq_idempotency_keys_project_id_operation_key",
        "idempotency_keys",
        ["project_id", "operation", "key"],
        unique=True,
    )
    op.create_table(
        "customer_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("initiator", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_customer_merges_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["customers.id"], name=op.f("fk_customer_merges_source_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["customers.id"], name=op.f("fk_customer_merges_target_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_merges")),
    )
    op.create_index(
        "ix_customer_merges_project_id_target_id",
        "customer_merges",
        ["project_id", "target_id"],
        unique=False,
    )
    op.create_index(
        "uq_customer_merges_project_id_source_id",
        "customer_merges",
        ["project_id", "source_id"],
        unique=True,
    )
    op.add_column("customer_identifiers", sa.Column("origin_customer_id", sa.Uuid(), nullable=True))
    op.add_column("projects", sa.Column("identifier_priority", sa.ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "identifier_priority")
    op.drop_column("customer_identifiers", "origin_customer_id")
    op.drop_index("uq_customer_merges_project_id_source_id", table_name="customer_merges")
    op.drop_index("ix_customer_merges_project_id_target_id", table_name="customer_merges")
    op.drop_table("customer_merges")
    op.drop_index("uq_idempotency_keys_project_id_operation_key", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
