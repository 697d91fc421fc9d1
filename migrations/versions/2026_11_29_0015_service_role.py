"""service role: the service acts as `cdp_service`, which cannot rewrite history

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29

Migrations run as the schema's owner. The service's connections take the role
`cdp_service` (the `role` startup parameter, CDP_DB_ROLE), which may read and write what
the API changes but cannot UPDATE, DELETE or TRUNCATE the history tables: the append-only
promise then holds against a bug in the service, not only against the triggers.

- Changelogs and segment/subscription history: SELECT and INSERT only. An erase replaces
  personal values in them through SECURITY DEFINER functions owned by the owner, which
  change nothing but the value columns (the trigger of 0014 checks that too).
- Ledgers (point_transactions, point_spends): SELECT and INSERT; of point_transactions
  only customer_id (a merge moves them) and reason/reference (an erase) may be updated.
- customer_merges: SELECT and INSERT; only `details` may be updated (an erase).
- Import staging tables live in their own schema, where the service may create tables;
  it cannot create anything in `public`.

The role is cluster-wide: it is created if missing and never dropped (other databases of
the cluster may use it); the downgrade revokes what this database granted.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICE_ROLE = "cdp_service"
STAGING_SCHEMA = "import_staging"
PARTITION_SCHEMA = "activity_partitions"

# Tables the service may only read and append to, with the columns it may still update.
_HISTORY_TABLES: dict[str, tuple[str, ...]] = {
    "profile_changelog": (),
    "identifier_history": (),
    "subscription_history": (),
    "segment_history": (),
    "point_transactions": ("customer_id", "reason", "reference"),
    "point_spends": (),
    "customer_merges": ("details",),
}

_CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN
        CREATE ROLE {SERVICE_ROLE} NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, '{SERVICE_ROLE}', 'MEMBER') THEN
        EXECUTE format('GRANT {SERVICE_ROLE} TO %I', current_user);
    END IF;
END
$$
"""

# Each function changes only the value columns of the customers' rows, to the marker.
_REDACT_FUNCTIONS = {
    "cdp_redact_profile_changelog": """
        UPDATE profile_changelog
        SET old_value = CASE WHEN old_value IS NULL THEN NULL ELSE '"[erased]"'::jsonb END,
            new_value = CASE WHEN new_value IS NULL THEN NULL ELSE '"[erased]"'::jsonb END
        WHERE project_id = p_project_id AND customer_id = ANY (p_customer_ids)
          AND (old_value IS NOT NULL OR new_value IS NOT NULL)
    """,
    "cdp_redact_identifier_history": """
        UPDATE identifier_history
        SET value = '[erased]',
            replaced_by = CASE WHEN replaced_by IS NULL THEN NULL ELSE '[erased]' END
        WHERE project_id = p_project_id AND customer_id = ANY (p_customer_ids)
    """,
    "cdp_redact_subscription_history": """
        UPDATE subscription_history
        SET source = CASE WHEN source IS NULL THEN NULL ELSE '[erased]' END,
            reason = CASE WHEN reason IS NULL THEN NULL ELSE '[erased]' END
        WHERE project_id = p_project_id AND customer_id = ANY (p_customer_ids)
    """,
}


def _create_redact_function(name: str, body: str) -> str:
    # SECURITY DEFINER runs the UPDATE with the owner's rights; the pinned search_path
    # keeps a caller from substituting its own tables or functions.
    return f"""
    CREATE FUNCTION {name}(p_project_id uuid, p_customer_ids uuid[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = public, pg_temp
    SET cdp.redacting = 'on'
    AS $$ {body} $$
    """


def _grant_schema_tables(schema: str) -> None:
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {SERVICE_ROLE}")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {SERVICE_ROLE}"
    )
    # Tables the owner creates later (new migrations, monthly partitions) start the same.
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {SERVICE_ROLE}"
    )


def upgrade() -> None:
    op.execute(_CREATE_ROLE)
    _grant_schema_tables("public")
    _grant_schema_tables(PARTITION_SCHEMA)
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {SERVICE_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {SERVICE_ROLE}"
    )
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {SERVICE_ROLE}")
    for table, updatable in _HISTORY_TABLES.items():
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {SERVICE_ROLE}")
        if updatable:
            op.execute(f"GRANT UPDATE ({', '.join(updatable)}) ON {table} TO {SERVICE_ROLE}")

    for name, body in _REDACT_FUNCTIONS.items():
        op.execute(_create_redact_function(name, body))
        op.execute(f"REVOKE ALL ON FUNCTION {name}(uuid, uuid[]) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {name}(uuid, uuid[]) TO {SERVICE_ROLE}")

    op.execute(f"CREATE SCHEMA IF NOT EXISTS {STAGING_SCHEMA}")
    op.execute(f"GRANT USAGE, CREATE ON SCHEMA {STAGING_SCHEMA} TO {SERVICE_ROLE}")
    # An import that was running during the upgrade finds its staging table where the
    # service now looks for it, owned by the role that will drop it.
    op.execute(
        r"""
        DO $$
        DECLARE stage record;
        BEGIN
            FOR stage IN SELECT tablename FROM pg_tables
                WHERE schemaname = 'public' AND tablename LIKE 'import\_stage\_%'
            LOOP
                EXECUTE format('ALTER TABLE public.%I SET SCHEMA import_staging',
                               stage.tablename);
                EXECUTE format('ALTER TABLE import_staging.%I OWNER TO cdp_service',
                               stage.tablename);
            END LOOP;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {STAGING_SCHEMA} CASCADE")
    for name in _REDACT_FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}(uuid, uuid[])")
    for schema in ("public", PARTITION_SCHEMA):
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {SERVICE_ROLE}"
        )
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {SERVICE_ROLE}")
        op.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {SERVICE_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {SERVICE_ROLE}"
    )
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {SERVICE_ROLE}")
