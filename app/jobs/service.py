"""The job queue: enqueue work in the caller's transaction, run it in the service's workers.

Delivery is at least once. A job whose worker dies (or stalls past its lease without
reporting progress) is claimed again by another worker, so every handler must be
idempotent per job: running it a second time must not do the work twice. The simplest
way is the one segments use: do the whole job in one transaction, so a crashed run
leaves nothing behind. A worker that has lost its lease never records an outcome.
"""

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import UnitOfWork
from app.core.errors import NotFound
from app.jobs import repository
from app.jobs.models import QUEUED, Job

logger = logging.getLogger(__name__)

ERROR_MAX_LENGTH = 2000
BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_CAP = timedelta(hours=1)


class LeaseLost(Exception):
    """Raised by `ProgressReporter.report` when another worker has taken the job over:
    the handler should stop (its transaction rolls back), since its outcome will be ignored."""


class ProgressReporter:
    """Given to a handler: records progress and extends the lease (a heartbeat)."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        job: Job,
        worker_id: str,
        claimed_at: datetime,
        lease: timedelta,
    ) -> None:
        self._uow = uow
        self._job_id = job.id
        self._attempt = job.attempts
        self._worker_id = worker_id
        self._lease = lease
        # Time is the claim's `now` plus what has elapsed since, so a clock that tests
        # set by hand stays the one source of time while long jobs still extend their lease.
        self._claimed_at = claimed_at
        self._started = time.monotonic()

    async def report(self, progress: dict[str, Any]) -> None:
        now = self._claimed_at + timedelta(seconds=time.monotonic() - self._started)
        # One statement in autocommit is its own short transaction, and it does not touch the
        # unit of work the handler may have open.
        async with self._uow.read_only() as session:
            held = await repository.heartbeat(
                session,
                job_id=self._job_id,
                worker_id=self._worker_id,
                attempt=self._attempt,
                progress=progress,
                locked_until=now + self._lease,
            )
        if not held:
            raise LeaseLost(f"job {self._job_id} was taken over by another worker")


JobHandler = Callable[[UnitOfWork, Job, ProgressReporter], Awaitable[dict[str, Any]]]
# Told when the queue gives a job up without running it again (its worker died on every
# attempt), so the domain can mark its own record failed too.
AbandonHandler = Callable[[UnitOfWork, Job, str], Awaitable[None]]


async def enqueue(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    kind: str,
    payload: dict[str, Any],
    run_after: datetime | None = None,
) -> Job:
    """Add a job inside the caller's transaction: it exists only if that transaction commits."""
    job = Job(project_id=project_id, kind=kind, payload=payload, status=QUEUED)
    if run_after is not None:
        job.run_after = run_after
    return await repository.add(session, job)


async def get_job(uow: UnitOfWork, project_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    async with uow.read_only() as session:
        job = await repository.get(session, project_id, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} does not exist.")
    return job


def backoff(attempts: int) -> timedelta:
    """The wait before retry number `attempts` + 1: doubling, capped."""
    wait: timedelta = BACKOFF_BASE * 2 ** max(attempts - 1, 0)
    return min(wait, BACKOFF_CAP)


async def run_one(
    uow: UnitOfWork,
    *,
    worker_id: str,
    handlers: Mapping[str, JobHandler],
    now: datetime,
    lease: timedelta,
    only_job_id: uuid.UUID | None = None,
    abandon_handlers: Mapping[str, AbandonHandler] | None = None,
) -> bool:
    """Claim one due job (or that job only), run its handler, record the outcome. False when
    nothing was due."""
    if not handlers:
        return False
    # A short transaction of its own: the row lock is released before the handler runs.
    async with uow:
        job = await repository.claim(
            uow.session,
            worker_id=worker_id,
            kinds=list(handlers),
            now=now,
            locked_until=now + lease,
            only_job_id=only_job_id,
        )
    if job is None:
        return False
    if job.attempts > job.max_attempts:
        # Only a re-claimed job gets here: its worker died on every attempt (a job that
        # crashes the process, say), so it is not run again.
        message = "lease expired on every attempt"
        await _record_failure(uow, job, worker_id, message, now, None)
        abandoned = (abandon_handlers or {}).get(job.kind)
        if abandoned is not None:
            await abandoned(uow, job, message)
        return True
    reporter = ProgressReporter(uow, job=job, worker_id=worker_id, claimed_at=now, lease=lease)
    started = time.monotonic()
    try:
        result = await handlers[job.kind](uow, job, reporter)
    except Exception as error:
        now += timedelta(seconds=time.monotonic() - started)
        message = f"{type(error).__name__}: {error}"[:ERROR_MAX_LENGTH]
        retry_at = now + backoff(job.attempts) if job.attempts < job.max_attempts else None
        await _record_failure(uow, job, worker_id, message, now, retry_at)
        return True
    # The outcome is stamped with the time the handler ended, not when it was claimed.
    now += timedelta(seconds=time.monotonic() - started)
    async with uow:
        recorded = await repository.succeed(
            uow.session,
            job_id=job.id,
            worker_id=worker_id,
            attempt=job.attempts,
            result=result,
            now=now,
        )
    if not recorded:
        logger.warning("job finished after its lease was lost", extra={"job_id": str(job.id)})
    return True


async def _record_failure(
    uow: UnitOfWork,
    job: Job,
    worker_id: str,
    message: str,
    now: datetime,
    retry_at: datetime | None,
) -> None:
    async with uow:
        recorded = await repository.fail(
            uow.session,
            job_id=job.id,
            worker_id=worker_id,
            attempt=job.attempts,
            error=message,
            retry_at=retry_at,
            now=now,
        )
    if not recorded:
        logger.warning("job failed after its lease was lost", extra={"job_id": str(job.id)})
    elif retry_at is None:
        logger.warning("job failed", extra={"job_id": str(job.id), "error": message})


async def is_pending(
    session: AsyncSession, *, project_id: uuid.UUID, kind: str, payload: dict[str, Any]
) -> bool:
    """A schedule asks this before enqueuing, so it never piles up the same job."""
    return await repository.pending_with(session, project_id, kind, payload)
