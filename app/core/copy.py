"""COPY into a table from the session's own connection, inside its transaction."""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def copy_records(
    session: AsyncSession,
    table: str,
    columns: Sequence[str],
    records: Iterable[Sequence[Any]],
    *,
    schema_name: str | None = None,
) -> None:
    """Bulk-load rows with COPY (binary): many times faster than INSERT for thousands of rows.

    It runs on the connection of the session's transaction, so the rows commit or roll back
    with everything else the use case wrote. JSON columns take their text (SQLAlchemy's
    asyncpg codec for jsonb encodes str), None is NULL.
    """
    rows = list(records)
    if not rows:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("the session's connection is closed")
    await driver.copy_records_to_table(
        table, records=rows, columns=list(columns), schema_name=schema_name
    )
