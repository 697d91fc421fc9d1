"""All SQL of imports (the staging table has its own module). Never commits."""

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.copy import copy_records
from app.core.db import project_page_query, table_of
from app.core.redaction import REDACTED
from app.imports.models import (
    COUNTERS,
    Import,
    ImportRowError,
    ImportSchedule,
    ImportScheduledFile,
)

_imports = table_of(Import)
_errors = table_of(ImportRowError)
_REPORT_COLUMNS = ("import_id", "row_number", "column", "message", "original_row")


async def add(session: AsyncSession, row: Import | ImportSchedule | ImportScheduledFile) -> None:
    session.add(row)
    await session.flush()


async def get(session: AsyncSession, project_id: uuid.UUID, import_id: uuid.UUID) -> Import | None:
    found = await session.scalars(
        select(Import).where(_imports.c.project_id == project_id, _imports.c.id == import_id)
    )
    return found.one_or_none()


async def lock(session: AsyncSession, import_id: uuid.UUID) -> Import | None:
    found = await session.scalars(
        select(Import)
        .where(_imports.c.id == import_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found.one_or_none()


async def page(
    session: AsyncSession, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[Import]:
    query = project_page_query(Import, project_id=project_id, after_id=after_id, limit=limit)
    return list(await session.scalars(query))


async def add_counts(
    session: AsyncSession,
    import_id: uuid.UUID,
    counts: dict[str, int],
    *,
    rows_done: int,
    bytes_done: int,
) -> None:
    """Add a batch's counts and move the resume point, in the batch's own transaction."""
    values: dict[str, Any] = {
        name: _imports.c[name] + counts.get(name, 0) for name in COUNTERS if counts.get(name)
    }
    await session.execute(
        update(Import)
        .where(_imports.c.id == import_id)
        .values(rows_done=rows_done, bytes_done=bytes_done, **values)
        .execution_options(synchronize_session=False)
    )


async def set_downloaded(session: AsyncSession, import_id: uuid.UUID, *, file_bytes: int) -> None:
    """The FTP file is here: record its size and forget the password."""
    await session.execute(
        update(Import)
        .where(_imports.c.id == import_id)
        .values(file_bytes=file_bytes, ftp_secret=None)
        .execution_options(synchronize_session=False)
    )


async def add_report(
    session: AsyncSession, import_id: uuid.UUID, lines: Sequence[tuple[int, str, str, str]]
) -> None:
    await copy_records(
        session, "import_errors", _REPORT_COLUMNS, [(import_id, *line) for line in lines]
    )


async def report_lines(
    session: AsyncSession, import_id: uuid.UUID
) -> AsyncIterator[tuple[int, str, str, str]]:
    """The error report in row order, streamed from a server-side cursor."""
    result = await session.stream(
        select(_errors.c.row_number, _errors.c.column, _errors.c.message, _errors.c.original_row)
        .where(_errors.c.import_id == import_id)
        .order_by(_errors.c.row_number, _errors.c.id)
        .execution_options(yield_per=1000)
    )
    async for row in result:
        yield row


async def get_schedule(
    session: AsyncSession, project_id: uuid.UUID, schedule_id: uuid.UUID
) -> ImportSchedule | None:
    found = await session.scalars(
        select(ImportSchedule).where(
            ImportSchedule.project_id == project_id, ImportSchedule.id == schedule_id
        )
    )
    return found.one_or_none()


async def lock_schedule(session: AsyncSession, schedule_id: uuid.UUID) -> ImportSchedule | None:
    found = await session.scalars(
        select(ImportSchedule)
        .where(ImportSchedule.id == schedule_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return found.one_or_none()


async def schedules_page(
    session: AsyncSession, project_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
) -> list[ImportSchedule]:
    query = project_page_query(
        ImportSchedule, project_id=project_id, after_id=after_id, limit=limit
    )
    return list(await session.scalars(query))


async def delete_schedule(session: AsyncSession, schedule: ImportSchedule) -> None:
    await session.delete(schedule)
    await session.flush()


async def due_schedule_ids(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    query = select(ImportSchedule.id).where(
        ImportSchedule.enabled,
        (ImportSchedule.last_polled_at.is_(None))
        | (
            ImportSchedule.last_polled_at
            <= now - func.make_interval(0, 0, 0, 0, 0, ImportSchedule.every_minutes)
        ),
    )
    return list(await session.scalars(query))


async def taken_fingerprints(session: AsyncSession, schedule_id: uuid.UUID) -> set[tuple[str, str]]:
    rows = await session.execute(
        select(ImportScheduledFile.name, ImportScheduledFile.fingerprint).where(
            ImportScheduledFile.schedule_id == schedule_id
        )
    )
    return {(name, fingerprint) for name, fingerprint in rows}


async def redact_report_lines(
    session: AsyncSession, project_id: uuid.UUID, values: Sequence[str]
) -> None:
    """Error-report rows of the project's imports that quote any of these values."""
    if not values:
        return
    quoting = or_(*(_errors.c.original_row.contains(v, autoescape=True) for v in values))
    await session.execute(
        update(ImportRowError)
        .where(
            _errors.c.import_id.in_(
                select(_imports.c.id).where(_imports.c.project_id == project_id)
            ),
            quoting,
        )
        .values(original_row=REDACTED)
        .execution_options(synchronize_session=False)
    )
