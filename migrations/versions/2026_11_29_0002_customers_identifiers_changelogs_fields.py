"""customers, identifiers, the two append-only changelogs, custom fields, blocklist

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# History is evidence: once written, a row is never changed or removed by the application.
APPEND_ONLY_TABLES = ("profile_changelog", "identifier_history")
_REJECT_REWRITE_FUNCTION = """
CREATE FUNCTION reject_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "custom_fields",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("enum_values", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column("max_length", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "CASE WHEN type = 'enum' THEN coalesce(cardinality(enum_values), 0) > 0 ELSE enum_values IS NULL END",
            name=op.f("ck_custom_fields_enum_values"),
        ),
        sa.CheckConstraint("entity IN ('customer')", name=op.f("ck_custom_fields_entity")),
        sa.CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,63}$'", name=op.f("ck_custom_fields_key")),
        sa.CheckConstraint(
            "max_length IS NULL OR (type = 'string' AND max_length BETWEEN 1 AND 10000)",
            name=op.f("ck_custom_fields_max_length"),
        ),
        sa.CheckConstraint(
            "type IN ('string', 'integer', 'decimal', 'boolean', 'date', 'datetime', 'enum', 'unique_id')",
            name=op.f("ck_custom_fields_type"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_custom_fields_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_fields")),
        sa.UniqueConstraint(
            "project_id", "entity", "key", name=op.f("uq_custom_fields_project_id_entity_key")
        ),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'active'"), nullable=False
        ),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("middle_name", sa.String(length=200), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("area", sa.String(length=200), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column(
            "custom_fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
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
        sa.CheckConstraint(
            "(status = 'merged') = (merged_into IS NOT NULL)", name=op.f("ck_customers_merged_into")
        ),
        sa.CheckConstraint(
            "gender IN ('female', 'male', 'unknown')", name=op.f("ck_customers_gender")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'merged', 'erased')", name=op.f("ck_customers_status")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["customers.id"], name=op.f("fk_customers_merged_into_customers")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_customers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_index(
        "ix_customers_merged_into",
        "customers",
        ["merged_into"],
        unique=False,
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )
    op.create_index(
        "ix_customers_project_id_created_at",
        "customers",
        ["project_id", "created_at"],
        unique=False,
    )
    op.create_index("ix_customers_project_id_id", "customers", ["project_id", "id"], unique=True)
    op.create_index(
        "ix_customers_project_id_updated_at",
        "customers",
        ["project_id", "updated_at"],
        unique=False,
    )
    op.create_table(
        "identifier_blocklist",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=True),
        sa.Column("pattern", sa.String(length=512), nullable=False),
        sa.Column("is_regex", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_identifier_blocklist_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identifier_blocklist")),
    )
    op.create_index(
        "ix_identifier_blocklist_project_id", "identifier_blocklist", ["project_id"], unique=False
    )
    op.create_table(
        "customer_identifiers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_identifiers_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_customer_identifiers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_identifiers")),
    )
    op.create_index(
        "ix_customer_identifiers_customer_id", "customer_identifiers", ["customer_id"], unique=False
    )
    op.create_index(
        "uq_customer_identifiers_project_id_kind_value",
        "customer_identifiers",
        ["project_id", "kind", "value"],
        unique=True,
    )
    op.create_index(
        "uq_customer_identifiers_single_valued",
        "customer_identifiers",
        ["project_id", "customer_id", "kind"],
        unique=True,
        postgresql_where=sa.text("kind NOT IN ('app_installation', 'discount_card', 'push_token')"),
    )
    op.create_table(
        "identifier_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("replaced_by", sa.String(length=512), nullable=True),
        sa.Column("other_customer_id", sa.Uuid(), nullable=True),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("initiator", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_identifier_history_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_identifier_history_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identifier_history")),
    )
    op.create_index(
        "ix_identifier_history_customer_id_id",
        "identifier_history",
        ["customer_id", "id"],
        unique=False,
    )
    op.create_table(
        "profile_changelog",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column(
            "old_value", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True
        ),
        sa.Column(
            "new_value", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True
        ),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("initiator", sa.String(length=100), nullable=False),
        sa.Column("initiator_key_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_profile_changelog_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_profile_changelog_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_changelog")),
    )
    op.create_index(
        "ix_profile_changelog_customer_id_id",
        "profile_changelog",
        ["customer_id", "id"],
        unique=False,
    )
    op.add_column(
        "api_keys",
        sa.Column(
            "allowed_touchpoints",
            sa.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )
    op.execute(_REJECT_REWRITE_FUNCTION)
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION reject_history_rewrite()"
        )


def downgrade() -> None:
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER trg_{table}_append_only ON {table}")
    op.execute("DROP FUNCTION reject_history_rewrite()")
    op.drop_column("api_keys", "allowed_touchpoints")
    op.drop_index("ix_profile_changelog_customer_id_id", table_name="profile_changelog")
    op.drop_table("profile_changelog")
    op.drop_index("ix_identifier_history_customer_id_id", table_name="identifier_history")
    op.drop_table("identifier_history")
    op.drop_index(
        "uq_customer_identifiers_single_valued",
        table_name="customer_identifiers",
        postgresql_where=sa.text("kind NOT IN ('app_installation', 'discount_card', 'push_token')"),
    )
    op.drop_index(
        "uq_customer_identifiers_project_id_kind_value", table_name="customer_identifiers"
    )
    op.drop_index("ix_customer_identifiers_customer_id", table_name="customer_identifiers")
    op.drop_table("customer_identifiers")
    op.drop_index("ix_identifier_blocklist_project_id", table_name="identifier_blocklist")
    op.drop_table("identifier_blocklist")
    op.drop_index("ix_customers_project_id_updated_at", table_name="customers")
    op.drop_index("ix_customers_project_id_id", table_name="customers")
    op.drop_index("ix_customers_project_id_created_at", table_name="customers")
    op.drop_index(
        "ix_customers_merged_into",
        table_name="customers",
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )
    op.drop_table("customers")
    op.drop_table("custom_fields")
