"""The settling job: pending points become available and old points expire on time,
without anyone calling. Runs in every worker; each balance is settled under its locks,
so two workers never settle the same points twice."""

import asyncio
import logging

from app.core.clock import Clock
from app.core.db import Database, UnitOfWork
from app.loyalty import settlement

logger = logging.getLogger(__name__)


async def settle_periodically(database: Database, clock: Clock, *, interval_seconds: float) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            settled = await settlement.settle_due(UnitOfWork(database.sessions), now=clock.now())
        except Exception:
            # A failed round is retried at the next interval; the job must outlive it.
            logger.exception("settling points failed")
            continue
        if settled:
            logger.info("points settled", extra={"lots": settled})
