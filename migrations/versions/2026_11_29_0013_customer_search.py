"""customers: indexes for the search filters and sorts of GET /v1/customers

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 16:00:00.000000+00:00

Every filter of the customer search is served by an index at a million customers (see
bench/customer_search.py). The indexes are built CONCURRENTLY: these tables are the
biggest of a live installation, and a plain CREATE INDEX would block every write to them
(identify, PATCH, imports) for as long as the build takes. CONCURRENTLY cannot run inside
a transaction, hence the autocommit block; if a build fails it leaves an INVALID index
behind, which has to be dropped before the migration is run again.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, columns or expressions, options): the same as the Index entries of the models.
_INDEXES: list[tuple[str, str, list[str | sa.TextClause], dict[str, Any]]] = [
    (
        "ix_customers_project_id_updated_at_id",
        "customers",
        ["project_id", "updated_at", "id"],
        {},
    ),
    (
        "ix_customers_project_id_lower_first_name",
        "customers",
        ["project_id", sa.text("lower(first_name) text_pattern_ops")],
        {},
    ),
    (
        "ix_customers_project_id_lower_last_name",
        "customers",
        ["project_id", sa.text("lower(last_name) text_pattern_ops")],
        {},
    ),
    (
        "ix_customers_project_id_lower_middle_name",
        "customers",
        ["project_id", sa.text("lower(middle_name) text_pattern_ops")],
        {},
    ),
    ("ix_customers_project_id_gender_id", "customers", ["project_id", "gender", "id"], {}),
    (
        "ix_customers_project_id_lower_area_id",
        "customers",
        ["project_id", sa.text("lower(area)"), "id"],
        {},
    ),
    ("ix_customers_project_id_birth_date", "customers", ["project_id", "birth_date"], {}),
    (
        "ix_customers_project_id_last_name_sort",
        "customers",
        ["project_id", sa.text("coalesce(last_name, '')"), "id"],
        {},
    ),
    (
        "ix_customers_custom_fields",
        "customers",
        ["custom_fields"],
        {"postgresql_using": "gin", "postgresql_ops": {"custom_fields": "jsonb_path_ops"}},
    ),
    (
        "ix_customer_identifiers_project_id_kind_value_pattern",
        "customer_identifiers",
        ["project_id", "kind", "value", "customer_id"],
        {"postgresql_ops": {"value": "text_pattern_ops"}},
    ),
    (
        "ix_customer_identifiers_email_domain",
        "customer_identifiers",
        ["project_id", "kind", sa.text("split_part(value, '@', 2)"), "customer_id"],
        {},
    ),
    (
        "ix_subscriptions_project_id_channel_topic_status",
        "subscriptions",
        ["project_id", "channel", "topic", "status", "customer_id"],
        {},
    ),
]


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, columns, options in _INDEXES:
            op.create_index(
                name, table, columns, unique=False, postgresql_concurrently=True, **options
            )
        # Superseded by ix_customers_project_id_updated_at_id (same leading columns).
        op.drop_index(
            "ix_customers_project_id_updated_at",
            table_name="customers",
            postgresql_concurrently=True,
        )
    # A prefix's row estimate comes from the histogram of `value`, shared by every kind:
    # with the default 100 buckets, "+4930" (5,000 phones of 1.7 million identifiers) was
    # estimated at 70 rows, and the plan read and sorted all 5,000 matches (30 ms) instead
    # of walking customers in id order (6 ms). 1000 buckets: estimated 2,100.
    op.execute("ALTER TABLE customer_identifiers ALTER COLUMN value SET STATISTICS 1000")


def downgrade() -> None:
    op.execute("ALTER TABLE customer_identifiers ALTER COLUMN value SET STATISTICS -1")
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_customers_project_id_updated_at",
            "customers",
            ["project_id", "updated_at"],
            unique=False,
            postgresql_concurrently=True,
        )
        for name, table, _, _ in reversed(_INDEXES):
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
