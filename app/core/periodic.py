"""Housekeeping loops run inside each worker process (settling points, scheduling jobs)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.core.db_errors import brief, unavailable_error

logger = logging.getLogger(__name__)


async def every(
    interval_seconds: float, action: Callable[[], Awaitable[int]], *, name: str
) -> None:
    """Run `action` every interval until cancelled; a failed round is logged and retried
    at the next interval, so the loop outlives it."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            done = await action()
        except Exception as error:
            if unavailable_error(error) is not None:
                logger.warning(
                    "%s skipped: database unavailable", name, extra={"error": brief(error)}
                )
            else:
                logger.exception("%s failed", name)
            continue
        if done:
            logger.info("%s", name, extra={"count": done})
