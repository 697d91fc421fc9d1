"""The worker loop run inside each service process (`job_workers` of them)."""

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta

from app.core.clock import Clock
from app.core.db import Database, UnitOfWork
from app.core.db_errors import brief, unavailable_error
from app.jobs.service import AbandonHandler, JobHandler, run_one

logger = logging.getLogger(__name__)

# How long a claimed job is its worker's before another may take it over; a handler
# that runs longer keeps its lease by reporting progress.
DEFAULT_LEASE = timedelta(minutes=5)


async def work_forever(
    database: Database,
    clock: Clock,
    *,
    worker_id: str,
    handlers: Mapping[str, JobHandler],
    poll_seconds: float,
    lease: timedelta = DEFAULT_LEASE,
    abandon_handlers: Mapping[str, AbandonHandler] | None = None,
) -> None:
    while True:
        try:
            # Drain what is due before sleeping, so a backlog is not worked at the poll rate.
            while await run_one(
                UnitOfWork(database.sessions),
                worker_id=worker_id,
                handlers=handlers,
                now=clock.now(),
                lease=lease,
                abandon_handlers=abandon_handlers,
            ):
                pass
        except Exception as error:
            # A failed round (the database away, say) is retried after the pause; the
            # worker must outlive it.
            if unavailable_error(error) is not None:
                logger.warning(
                    "job worker round skipped: database unavailable",
                    extra={"worker_id": worker_id, "error": brief(error)},
                )
            else:
                logger.exception("job worker round failed", extra={"worker_id": worker_id})
        await asyncio.sleep(poll_seconds)
