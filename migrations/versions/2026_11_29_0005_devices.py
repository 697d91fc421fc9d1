"""devices, customer-device links, customer auth tokens, publishable keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("installation_id", sa.String(length=128), nullable=False),
        sa.Column("app_id", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("push_provider", sa.String(length=16), nullable=True),
        sa.Column("push_token", sa.String(length=2048), nullable=True),
        sa.Column("web_push_p256dh", sa.String(length=128), nullable=True),
        sa.Column("web_push_auth", sa.String(length=64), nullable=True),
        sa.Column("push_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("app_version", sa.String(length=64), nullable=True),
        sa.Column("os_version", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('mobile_app', 'web_push')", name=op.f("ck_devices_kind")),
        sa.CheckConstraint(
            "platform IN ('ios', 'android', 'huawei', 'web')", name=op.f("ck_devices_platform")
        ),
        sa.CheckConstraint(
            "push_provider IS NULL OR push_provider IN ('apns', 'fcm', 'hms', 'webpush')",
            name=op.f("ck_devices_push_provider"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_devices_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index(
        "uq_devices_project_id_installation_id",
        "devices",
        ["project_id", "installation_id"],
        unique=True,
    )
    op.create_index(
        "uq_devices_project_id_push_token",
        "devices",
        ["project_id", "push_token"],
        unique=True,
        postgresql_where=sa.text("push_token IS NOT NULL"),
    )
    op.create_table(
        "customer_auth_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_auth_tokens_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_customer_auth_tokens_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_auth_tokens")),
    )
    op.create_index(
        "uq_customer_auth_tokens_prefix", "customer_auth_tokens", ["prefix"], unique=True
    )
    op.create_index(
        "uq_customer_auth_tokens_project_id_customer_id",
        "customer_auth_tokens",
        ["project_id", "customer_id"],
        unique=True,
    )
    op.create_table(
        "customer_devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("origin_customer_id", sa.Uuid(), nullable=True),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_devices_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_customer_devices_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_customer_devices_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_devices")),
    )
    op.create_index(
        "ix_customer_devices_device_id", "customer_devices", ["device_id"], unique=False
    )
    op.create_index(
        "uq_customer_devices_project_id_customer_id_device_id",
        "customer_devices",
        ["project_id", "customer_id", "device_id"],
        unique=True,
    )
    op.add_column(
        "api_keys",
        sa.Column("kind", sa.String(length=16), server_default=sa.text("'secret'"), nullable=False),
    )
    op.alter_column(
        "customer_identifiers",
        "value",
        existing_type=sa.VARCHAR(length=512),
        type_=sa.String(length=2048),
        existing_nullable=False,
    )
    op.alter_column(
        "identifier_history",
        "value",
        existing_type=sa.VARCHAR(length=512),
        type_=sa.String(length=2048),
        existing_nullable=False,
    )
    op.alter_column(
        "identifier_history",
        "replaced_by",
        existing_type=sa.VARCHAR(length=512),
        type_=sa.String(length=2048),
        existing_nullable=True,
    )


def downgrade() -> None:
    op.alter_column(
        "identifier_history",
        "replaced_by",
        existing_type=sa.String(length=2048),
        type_=sa.VARCHAR(length=512),
        existing_nullable=True,
    )
    op.alter_column(
        "identifier_history",
        "value",
        existing_type=sa.String(length=2048),
        type_=sa.VARCHAR(length=512),
        existing_nullable=False,
    )
    op.alter_column(
        "customer_identifiers",
        "value",
        existing_type=sa.String(length=2048),
        type_=sa.VARCHAR(length=512),
        existing_nullable=False,
    )
    op.drop_column("api_keys", "kind")
    op.drop_index(
        "uq_customer_devices_project_id_customer_id_device_id", table_name="customer_devices"
    )
    op.drop_index("ix_customer_devices_device_id", table_name="customer_devices")
    op.drop_table("customer_devices")
    op.drop_index(
        "uq_customer_auth_tokens_project_id_customer_id", table_name="customer_auth_tokens"
    )
    op.drop_index("uq_customer_auth_tokens_prefix", table_name="customer_auth_tokens")
    op.drop_table("customer_auth_tokens")
    op.drop_index(
        "uq_devices_project_id_push_token",
        table_name="devices",
        postgresql_where=sa.text("push_token IS NOT NULL"),
    )
    op.drop_index("uq_devices_project_id_installation_id", table_name="devices")
    op.drop_table("devices")
