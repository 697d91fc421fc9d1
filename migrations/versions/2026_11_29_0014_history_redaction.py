"""history redaction: the one path by which an erase may rewrite append-only rows

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29

The append-only tables refused every UPDATE and DELETE. Erasing a customer (the right to
be forgotten) must replace the personal values in its history with "[erased]" and
nothing else. The trigger now lets an UPDATE through only when the transaction has
opted in (`SET LOCAL cdp.redacting = 'on'`, which only the erase use case does) and the
update changes nothing but that table's value columns, each to the marker. DELETE stays
refused.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns that may hold personal values, per append-only table.
_IS_REDACTION = """
CREATE FUNCTION cdp_is_redaction(table_name text, old_row jsonb, new_row jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM jsonb_each(new_row) AS changed
        WHERE changed.value IS DISTINCT FROM old_row -> changed.key
          AND NOT (
              changed.value = '"[erased]"'::jsonb
              AND changed.key = ANY (CASE table_name
                  WHEN 'profile_changelog' THEN ARRAY['old_value', 'new_value']
                  WHEN 'identifier_history' THEN ARRAY['value', 'replaced_by']
                  WHEN 'subscription_history' THEN ARRAY['source', 'reason']
                  ELSE ARRAY[]::text[] END)
          )
    )
$$
"""

# Every string inside a JSON value replaced by the marker; numbers and booleans kept (an
# action's amounts, a prize's counts), so erased records still add up.
_REDACT_STRINGS = """
CREATE FUNCTION cdp_redact_strings(value jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'string' THEN '"[erased]"'::jsonb
        WHEN 'object' THEN (
            SELECT coalesce(jsonb_object_agg(key, cdp_redact_strings(item)), '{}'::jsonb)
            FROM jsonb_each(value) AS entries(key, item))
        WHEN 'array' THEN (
            SELECT coalesce(jsonb_agg(cdp_redact_strings(item) ORDER BY position), '[]'::jsonb)
            FROM jsonb_array_elements(value) WITH ORDINALITY AS items(item, position))
        ELSE value
    END
$$
"""

_REJECT_REWRITE_WITH_REDACTION = """
CREATE OR REPLACE FUNCTION reject_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('cdp.redacting', true) = 'on'
       AND cdp_is_redaction(TG_TABLE_NAME, to_jsonb(OLD), to_jsonb(NEW)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_REJECT_REWRITE = """
CREATE OR REPLACE FUNCTION reject_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.execute(_IS_REDACTION)
    op.execute(_REDACT_STRINGS)
    op.execute(_REJECT_REWRITE_WITH_REDACTION)


def downgrade() -> None:
    op.execute(_REJECT_REWRITE)
    op.execute("DROP FUNCTION cdp_redact_strings(jsonb)")
    op.execute("DROP FUNCTION cdp_is_redaction(text, jsonb, jsonb)")
