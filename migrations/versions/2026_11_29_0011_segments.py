"""segments: segmentations, segments with rules, memberships, append-only history

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Time-ordered ids for rows written by set-based SQL (recalculation), like app.core.ids.
_UUID7 = """
CREATE FUNCTION cdp_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                FROM 3)
            FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$
"""


def upgrade() -> None:
    op.execute(_UUID7)
    op.create_table(
        "segmentations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("recalculate_every_minutes", sa.Integer(), nullable=True),
        sa.Column("last_recalculated_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("kind IN ('manual', 'rule')", name=op.f("ck_segmentations_kind")),
        sa.CheckConstraint(
            "recalculate_every_minutes IS NULL OR recalculate_every_minutes > 0",
            name=op.f("ck_segmentations_recalculate_every_minutes"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_segmentations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segmentations")),
    )
    op.create_index(
        "uq_segmentations_project_id_key", "segmentations", ["project_id", "key"], unique=True
    )
    op.create_table(
        "segment_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("segmentation_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("recalculation_id", sa.Uuid(), nullable=True),
        sa.Column("touchpoint", sa.String(length=100), nullable=False),
        sa.Column("initiator", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("event IN ('added', 'removed')", name=op.f("ck_segment_history_event")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_segment_history_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_history")),
    )
    op.create_index(
        "ix_segment_history_customer_id_id", "segment_history", ["customer_id", "id"], unique=False
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("segmentation_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rule", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_segments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segmentation_id"],
            ["segmentations.id"],
            name=op.f("fk_segments_segmentation_id_segmentations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
    )
    op.create_index(
        "uq_segments_segmentation_id_key", "segments", ["segmentation_id", "key"], unique=True
    )
    op.create_table(
        "segment_memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("segmentation_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column(
            "since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_segment_memberships_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_memberships_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segmentation_id"],
            ["segmentations.id"],
            name=op.f("fk_segment_memberships_segmentation_id_segmentations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_memberships")),
    )
    op.create_index(
        "ix_segment_memberships_customer_id", "segment_memberships", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_segment_memberships_segment_id", "segment_memberships", ["segment_id"], unique=False
    )
    op.create_index(
        "uq_segment_memberships_segmentation_id_customer_id",
        "segment_memberships",
        ["segmentation_id", "customer_id"],
        unique=True,
    )
    # The same guard as the other histories (function from revision 0002).
    op.execute(
        "CREATE TRIGGER trg_segment_history_append_only BEFORE UPDATE OR DELETE "
        "ON segment_history FOR EACH ROW EXECUTE FUNCTION reject_history_rewrite()"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION cdp_uuid7()")
    op.execute("DROP TRIGGER trg_segment_history_append_only ON segment_history")
    op.drop_index(
        "uq_segment_memberships_segmentation_id_customer_id", table_name="segment_memberships"
    )
    op.drop_index("ix_segment_memberships_segment_id", table_name="segment_memberships")
    op.drop_index("ix_segment_memberships_customer_id", table_name="segment_memberships")
    op.drop_table("segment_memberships")
    op.drop_index("uq_segments_segmentation_id_key", table_name="segments")
    op.drop_table("segments")
    op.drop_index("ix_segment_history_customer_id_id", table_name="segment_history")
    op.drop_table("segment_history")
    op.drop_index("uq_segmentations_project_id_key", table_name="segmentations")
    op.drop_table("segmentations")
