"""promotions: promo pools, promo codes, prizes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "promo_pools",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("key ~ '^[a-z][a-z0-9_.-]{0,63}$'", name=op.f("ck_promo_pools_key")),
        sa.CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until",
            name=op.f("ck_promo_pools_validity"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_promo_pools_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_pools")),
    )
    op.create_index(
        "uq_promo_pools_project_id_key", "promo_pools", ["project_id", "key"], unique=True
    )
    op.create_table(
        "promo_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'available'"), nullable=False
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("origin_customer_id", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_reference", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'available' AND customer_id IS NULL AND issued_at IS NULL) "
            "OR (status IN ('issued', 'redeemed') AND customer_id IS NOT NULL "
            "AND issued_at IS NOT NULL) OR status = 'void'",
            name=op.f("ck_promo_codes_issued"),
        ),
        sa.CheckConstraint(
            "(status = 'redeemed') = (redeemed_at IS NOT NULL)",
            name=op.f("ck_promo_codes_redeemed"),
        ),
        sa.CheckConstraint(
            "status IN ('available', 'issued', 'redeemed', 'void')",
            name=op.f("ck_promo_codes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_promo_codes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["promo_pools.id"], name=op.f("fk_promo_codes_pool_id_promo_pools")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_promo_codes_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_codes")),
    )
    # Issuing walks this: the oldest available code of a pool (FOR UPDATE SKIP LOCKED).
    op.create_index(
        "ix_promo_codes_available",
        "promo_codes",
        ["pool_id", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'available'"),
    )
    op.create_index(
        "ix_promo_codes_customer_id_issued_at",
        "promo_codes",
        ["customer_id", "issued_at"],
        unique=False,
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    op.create_index(
        "ix_promo_codes_pool_id_status", "promo_codes", ["pool_id", "status"], unique=False
    )
    op.create_index(
        "uq_promo_codes_project_id_code", "promo_codes", ["project_id", "code"], unique=True
    )
    op.create_table(
        "prizes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("origin_customer_id", sa.Uuid(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("prize", sa.String(length=200), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'issued'"), nullable=False
        ),
        sa.Column("details", postgresql.JSONB(none_as_null=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'claimed') = (claimed_at IS NOT NULL)", name=op.f("ck_prizes_claimed")
        ),
        sa.CheckConstraint("status IN ('issued', 'claimed')", name=op.f("ck_prizes_status")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_prizes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_prizes_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prizes")),
    )
    op.create_index("ix_prizes_customer_id_id", "prizes", ["customer_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_prizes_customer_id_id", table_name="prizes")
    op.drop_table("prizes")
    op.drop_index("uq_promo_codes_project_id_code", table_name="promo_codes")
    op.drop_index("ix_promo_codes_pool_id_status", table_name="promo_codes")
    op.drop_index("ix_promo_codes_customer_id_issued_at", table_name="promo_codes")
    op.drop_index("ix_promo_codes_available", table_name="promo_codes")
    op.drop_table("promo_codes")
    op.drop_index("uq_promo_pools_project_id_key", table_name="promo_pools")
    op.drop_table("promo_pools")
