"""Starting a use case over when a concurrent change invalidated what it read."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.core.errors import Conflict

ResultT = TypeVar("ResultT")
DEFAULT_ATTEMPTS = 3


class MergedMeanwhile(Conflict):
    """A customer resolved (to its survivor) before its row was locked was merged or erased
    by the time it was. Inside `with_retries` the use case starts over and resolves it
    again: it then acts on the survivor, or answers 404, as if it had come after the merge
    or the erase. A use case that does not start over answers this 409."""


class StaleRead(Exception):
    """Raised inside a use case when what it read before taking its locks has changed."""


async def with_retries(
    attempt: Callable[[], Awaitable[ResultT]],
    *,
    retry_on: tuple[type[Exception], ...] = (StaleRead, MergedMeanwhile),
    attempts: int = DEFAULT_ATTEMPTS,
) -> ResultT:
    """Run `attempt` (one transaction) again after a lost race; a 409 if it keeps losing."""
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except retry_on:
            if number == attempts:
                raise Conflict(
                    "Concurrent changes to the same records; retry the request."
                ) from None
    raise AssertionError("unreachable")
