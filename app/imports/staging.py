"""The per-import staging table: every identifier of every row the import has committed.

Each batch COPYs its rows' identifiers in, then resolves them with one set-based query:
who owns each identifier now, and which earlier row of the same file already named it (a
duplicate, applied in file order: the later row wins). The table lives as long as the
import (a resumed run finds it as its committed batches left it) and is dropped at the end.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.copy import copy_records


@dataclass(frozen=True)
class StagedIdentifier:
    row_number: int
    kind: str
    value: str
    owner: uuid.UUID | None
    earlier_row: int | None


STAGE_TABLE_PREFIX = "import_stage_"
# The one schema where the service may create tables (migration 0015).
STAGE_SCHEMA = "import_staging"


def stage_table_name(import_id: uuid.UUID) -> str:
    # A uuid's hex is safe to splice into SQL: 32 characters of [0-9a-f].
    return f"{STAGE_TABLE_PREFIX}{import_id.hex}"


def stage_table(import_id: uuid.UUID) -> str:
    return f"{STAGE_SCHEMA}.{stage_table_name(import_id)}"


async def create(session: AsyncSession, import_id: uuid.UUID) -> None:
    table = stage_table(import_id)
    await session.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(row_number bigint NOT NULL, kind text NOT NULL, value text NOT NULL)"
        )
    )
    await session.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {stage_table_name(import_id)}_lookup "
            f"ON {table} (kind, value, row_number)"
        )
    )


async def drop(session: AsyncSession, import_id: uuid.UUID) -> None:
    await session.execute(text(f"DROP TABLE IF EXISTS {stage_table(import_id)}"))


async def add(
    session: AsyncSession, import_id: uuid.UUID, records: Sequence[tuple[int, str, str]]
) -> None:
    await copy_records(
        session,
        stage_table_name(import_id),
        ("row_number", "kind", "value"),
        records,
        schema_name=STAGE_SCHEMA,
    )


async def resolve(
    session: AsyncSession,
    import_id: uuid.UUID,
    project_id: uuid.UUID,
    *,
    first_row: int,
    last_row: int,
) -> list[StagedIdentifier]:
    """Owner and earlier occurrence of each staged identifier of rows first..last."""
    table = stage_table(import_id)
    result = await session.execute(
        text(
            f"SELECT s.row_number, s.kind, s.value, i.customer_id, ("  # noqa: S608 (hex name)
            f"  SELECT max(e.row_number) FROM {table} e"
            "   WHERE e.kind = s.kind AND e.value = s.value AND e.row_number < s.row_number"
            ") AS earlier_row "
            f"FROM {table} s "
            "LEFT JOIN customer_identifiers i "
            "  ON i.project_id = :project_id AND i.kind = s.kind AND i.value = s.value "
            "WHERE s.row_number BETWEEN :first_row AND :last_row"
        ),
        {"project_id": project_id, "first_row": first_row, "last_row": last_row},
    )
    return [StagedIdentifier(*row) for row in result]
