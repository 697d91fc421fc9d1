"""idempotency key age index: expired keys are found by age, not by a scan

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29

Idempotency keys are now deleted after their retention (24 h by default). The purge asks
for the keys older than a cutoff; without an index on their age it would read the whole
table every round.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
