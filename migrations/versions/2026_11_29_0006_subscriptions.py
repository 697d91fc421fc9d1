"""subscriptions: topics, current decisions, append-only history, project channels

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscription_topics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("channels", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "key ~ '^[a-z][a-z0-9_.-]{0,63}$'", name=op.f("ck_subscription_topics_key")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_subscription_topics_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_topics")),
    )
    op.create_index(
        "uq_subscription_topics_project_id_key",
        "subscription_topics",
        ["project_id", "key"],
        unique=True,
    )
    op.create_table(
        "subscription_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("old_status", sa.String(length=16), nullable=True),
        sa.Column("new_status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("initiator", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "new_status IN ('subscribed', 'unsubscribed', 'pending')",
            name=op.f("ck_subscription_history_new_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_subscription_history_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_subscription_history_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_history")),
    )
    op.create_index(
        "ix_subscription_history_customer_id_id",
        "subscription_history",
        ["customer_id", "id"],
        unique=False,
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=64), server_default=sa.text("''"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("origin_customer_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('subscribed', 'unsubscribed', 'pending')",
            name=op.f("ck_subscriptions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subscriptions_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_subscriptions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        "uq_subscriptions_project_id_customer_id_channel_topic",
        "subscriptions",
        ["project_id", "customer_id", "channel", "topic"],
        unique=True,
    )
    op.add_column(
        "projects", sa.Column("subscription_channels", sa.ARRAY(sa.Text()), nullable=True)
    )
    # The same guard as the other histories (function from revision 0002).
    op.execute(
        "CREATE TRIGGER trg_subscription_history_append_only BEFORE UPDATE OR DELETE "
        "ON subscription_history FOR EACH ROW EXECUTE FUNCTION reject_history_rewrite()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_subscription_history_append_only ON subscription_history")
    op.drop_column("projects", "subscription_channels")
    op.drop_index(
        "uq_subscriptions_project_id_customer_id_channel_topic", table_name="subscriptions"
    )
    op.drop_table("subscriptions")
    op.drop_index("ix_subscription_history_customer_id_id", table_name="subscription_history")
    op.drop_table("subscription_history")
    op.drop_index("uq_subscription_topics_project_id_key", table_name="subscription_topics")
    op.drop_table("subscription_topics")
