"""points: accounts, ledger, lots, spends, balances

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "point_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("precision", sa.Integer(), nullable=False),
        sa.Column("lifetime_days", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "lifetime_days IS NULL OR lifetime_days > 0",
            name=op.f("ck_point_accounts_lifetime_days"),
        ),
        sa.CheckConstraint("precision BETWEEN 0 AND 4", name=op.f("ck_point_accounts_precision")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_point_accounts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_accounts")),
    )
    op.create_index(
        "uq_point_accounts_project_id_code", "point_accounts", ["project_id", "code"], unique=True
    )
    op.create_table(
        "point_balances",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "available",
            sa.Numeric(precision=20, scale=4),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "pending",
            sa.Numeric(precision=20, scale=4),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "earned", sa.Numeric(precision=20, scale=4), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "spent", sa.Numeric(precision=20, scale=4), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "expired",
            sa.Numeric(precision=20, scale=4),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["point_accounts.id"],
            name=op.f("fk_point_balances_account_id_point_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_point_balances_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_point_balances_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_balances")),
    )
    op.create_index(
        "uq_point_balances_project_id_customer_id_account_id",
        "point_balances",
        ["project_id", "customer_id", "account_id"],
        unique=True,
    )
    op.create_table(
        "point_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("origin_customer_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("initiator", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type IN ('accrual', 'redemption', 'expiry', 'adjustment', 'reversal')",
            name=op.f("ck_point_transactions_type"),
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_point_transactions_amount")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["point_accounts.id"],
            name=op.f("fk_point_transactions_account_id_point_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_point_transactions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_point_transactions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["point_transactions.id"],
            name=op.f("fk_point_transactions_reverses_id_point_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_transactions")),
    )
    op.create_index(
        "ix_point_transactions_customer_id_id",
        "point_transactions",
        ["customer_id", "id"],
        unique=False,
    )
    op.create_index(
        "uq_point_transactions_reverses_id",
        "point_transactions",
        ["reverses_id"],
        unique=True,
        postgresql_where=sa.text("reverses_id IS NOT NULL"),
    )
    op.create_table(
        "point_lots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("remaining", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.CheckConstraint("remaining >= 0", name=op.f("ck_point_lots_remaining")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["point_accounts.id"],
            name=op.f("fk_point_lots_account_id_point_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_point_lots_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["id"], ["point_transactions.id"], name=op.f("fk_point_lots_id_point_transactions")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_point_lots_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_lots")),
    )
    op.create_index(
        "ix_point_lots_due",
        "point_lots",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0 AND expires_at IS NOT NULL"),
    )
    op.create_index(
        "ix_point_lots_pending",
        "point_lots",
        ["available_at"],
        unique=False,
        postgresql_where=sa.text("NOT released"),
    )
    op.create_index(
        "ix_point_lots_spendable",
        "point_lots",
        ["customer_id", "account_id", "expires_at", "id"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_table(
        "point_spends",
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["point_lots.id"], name=op.f("fk_point_spends_lot_id_point_lots")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["point_transactions.id"],
            name=op.f("fk_point_spends_transaction_id_point_transactions"),
        ),
        sa.PrimaryKeyConstraint("transaction_id", "lot_id", name=op.f("pk_point_spends")),
    )


def downgrade() -> None:
    op.drop_table("point_spends")
    op.drop_index(
        "ix_point_lots_spendable",
        table_name="point_lots",
        postgresql_where=sa.text("remaining > 0"),
    )
    op.drop_index(
        "ix_point_lots_pending", table_name="point_lots", postgresql_where=sa.text("NOT released")
    )
    op.drop_index(
        "ix_point_lots_due",
        table_name="point_lots",
        postgresql_where=sa.text("remaining > 0 AND expires_at IS NOT NULL"),
    )
    op.drop_table("point_lots")
    op.drop_index(
        "uq_point_transactions_reverses_id",
        table_name="point_transactions",
        postgresql_where=sa.text("reverses_id IS NOT NULL"),
    )
    op.drop_index("ix_point_transactions_customer_id_id", table_name="point_transactions")
    op.drop_table("point_transactions")
    op.drop_index(
        "uq_point_balances_project_id_customer_id_account_id", table_name="point_balances"
    )
    op.drop_table("point_balances")
    op.drop_index("uq_point_accounts_project_id_code", table_name="point_accounts")
    op.drop_table("point_accounts")
