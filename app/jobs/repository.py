"""All SQL of the job queue. Never commits: the service owns each transaction."""

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.core.db import table_of
from app.jobs.models import FAILED, QUEUED, RUNNING, SUCCEEDED, Job

_jobs = table_of(Job)


async def add(session: AsyncSession, job: Job) -> Job:
    session.add(job)
    await session.flush()
    return job


async def get(session: AsyncSession, project_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    found = await session.scalars(
        select(Job).where(_jobs.c.project_id == project_id, _jobs.c.id == job_id)
    )
    return found.one_or_none()


async def claim(
    session: AsyncSession,
    *,
    worker_id: str,
    kinds: Collection[str],
    now: datetime,
    locked_until: datetime,
    only_job_id: uuid.UUID | None = None,
) -> Job | None:
    """Take the oldest due job of one of `kinds`, or one whose lease ran out (its worker died).

    SKIP LOCKED lets concurrent workers each take a different row without waiting; only
    kinds this worker has handlers for are taken, so a process that lacks a newer handler
    (a rolling deploy) leaves those jobs to the others. `only_job_id`: that job or none
    (the CLI runs the import it queued).
    """
    wanted: list[ColumnElement[bool]] = [_jobs.c.kind.in_(list(kinds))]
    if only_job_id is not None:
        wanted.append(_jobs.c.id == only_job_id)
    due = (
        select(_jobs.c.id)
        .where(
            *wanted,
            or_(
                and_(_jobs.c.status == QUEUED, _jobs.c.run_after <= now),
                and_(_jobs.c.status == RUNNING, _jobs.c.locked_until < now),
            ),
        )
        .order_by(_jobs.c.run_after, _jobs.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(Job)
        .where(_jobs.c.id == due)
        .values(
            status=RUNNING,
            locked_by=worker_id,
            locked_until=locked_until,
            attempts=_jobs.c.attempts + 1,
            started_at=func.coalesce(_jobs.c.started_at, now),
        )
        .returning(Job)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    claimed = await session.scalars(statement)
    return claimed.one_or_none()


def _held(job_id: uuid.UUID, worker_id: str, attempt: int) -> Any:
    # The lease is identified by worker and attempt number: a re-claim (even by a worker
    # with the same id) bumps attempts, so an outdated run can never match.
    return and_(
        _jobs.c.id == job_id,
        _jobs.c.status == RUNNING,
        _jobs.c.locked_by == worker_id,
        _jobs.c.attempts == attempt,
    )


async def heartbeat(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    worker_id: str,
    attempt: int,
    progress: dict[str, Any],
    locked_until: datetime,
) -> bool:
    result = await session.execute(
        update(Job)
        .where(_held(job_id, worker_id, attempt))
        .values(progress=progress, locked_until=locked_until)
        .returning(_jobs.c.id)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


async def succeed(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    worker_id: str,
    attempt: int,
    result: dict[str, Any],
    now: datetime,
) -> bool:
    return await _finish(
        session,
        job_id=job_id,
        worker_id=worker_id,
        attempt=attempt,
        values={"status": SUCCEEDED, "result": result, "error": None, "finished_at": now},
    )


async def fail(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    worker_id: str,
    attempt: int,
    error: str,
    retry_at: datetime | None,
    now: datetime,
) -> bool:
    """Back to the queue at `retry_at`, or failed for good when it is None."""
    values: dict[str, Any] = {"error": error}
    if retry_at is None:
        values |= {"status": FAILED, "finished_at": now}
    else:
        values |= {"status": QUEUED, "run_after": retry_at}
    return await _finish(
        session, job_id=job_id, worker_id=worker_id, attempt=attempt, values=values
    )


async def _finish(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    worker_id: str,
    attempt: int,
    values: dict[str, Any],
) -> bool:
    result = await session.execute(
        update(Job)
        .where(_held(job_id, worker_id, attempt))
        .values(locked_by=None, locked_until=None, **values)
        .returning(_jobs.c.id)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


async def pending_with(
    session: AsyncSession, project_id: uuid.UUID, kind: str, payload: dict[str, Any]
) -> bool:
    """Whether a job of this kind whose payload contains `payload` is queued or running."""
    query = (
        select(func.count())
        .select_from(Job)
        .where(
            Job.project_id == project_id,
            Job.kind == kind,
            Job.status.in_(("queued", "running")),
            Job.payload.contains(payload),
        )
    )
    return bool(await session.scalar(query))
