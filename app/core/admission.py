"""Admission control: a process takes on no more requests than it can answer in time.

The API spends most of a request's time on the CPU of its own process. When requests
arrive faster than it can serve them, every request waits behind all the others: without
a bound, latency grows until clients time out, and the work done for them is wasted.
This middleware lets at most `max_in_flight` requests in at once. A request over that
waits for a slot for up to `wait_seconds` (a short burst is absorbed); if none frees up,
it is answered at once with 503 `overloaded` and Retry-After, having done nothing, and
the requests already inside keep their latency. Probes and metrics are never held back:
an overloaded process is alive and ready, only busy.
"""

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import Overloaded
from app.core.problems import domain_error_response

# The health and metrics endpoints: cheap, and they must answer while the API is busy.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_SECONDS = 1


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, max_in_flight: int, wait_seconds: float) -> None:
        self.app = app
        self.wait_seconds = wait_seconds
        # None: no limit (max_in_flight 0).
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._slots is None or scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if not await self._admitted(self._slots):
            error = Overloaded(
                "The service is at capacity; retry after the Retry-After seconds.",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
            await domain_error_response(error, scope["path"])(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _admitted(self, slots: asyncio.Semaphore) -> bool:
        if not slots.locked():
            await slots.acquire()
            return True
        try:
            await asyncio.wait_for(slots.acquire(), self.wait_seconds)
        except TimeoutError:
            return False
        return True
