"""Housekeeping loops run inside each worker process (settling points, scheduling jobs)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

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
        except Exception:
            logger.exception("%s failed", name)
            continue
        if done:
            logger.info("%s", name, extra={"count": done})
