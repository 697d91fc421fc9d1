"""Request guards that run before routing: body size and content type."""

import asyncio
import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import DomainError, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from app.core.middleware import header_value
from app.core.problems import domain_error_response

METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# JSON everywhere; multipart only where an endpoint takes an upload (it validates the parts).
_ACCEPTED_MEDIA_TYPES = ("application/json", "multipart/form-data")


def _is_accepted_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _ACCEPTED_MEDIA_TYPES:
        return True
    # Structured syntax suffix (RFC 6839), e.g. application/merge-patch+json.
    return media_type.startswith("application/") and media_type.endswith("+json")


@dataclass(frozen=True)
class RouteBodyLimit:
    """A larger body limit for the upload route whose path matches (a file of codes, say):
    raising the general limit for one upload would raise it for every JSON endpoint."""

    path: re.Pattern[str]
    max_body_bytes: int


class RequestGuardMiddleware:
    """Refuses oversized bodies (413), bodies of an unreadable type (415) and bodies that
    arrive too slowly (408) before any work."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        route_limits: Sequence[RouteBodyLimit] = (),
        body_timeout_seconds: float = 0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.route_limits = tuple(route_limits)
        # The longest wait for the next piece of a request body; 0: no limit.
        self.body_timeout_seconds = body_timeout_seconds

    def _limit_for(self, path: str) -> int:
        for route in self.route_limits:
            if route.path.fullmatch(path):
                return max(route.max_body_bytes, self.max_body_bytes)
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        error = self._check_headers(scope, limit)
        if error is not None:
            await domain_error_response(error, scope["path"])(scope, receive, send)
            return
        await self.app(scope, self._counting(receive, limit), send)

    def _check_headers(self, scope: Scope, limit: int) -> DomainError | None:
        content_length = header_value(scope, b"content-length")
        if content_length is not None and content_length.isdigit():
            if int(content_length) > limit:
                return self._too_large(limit)
            has_body = int(content_length) > 0
        else:
            has_body = header_value(scope, b"transfer-encoding") is not None
        content_type = header_value(scope, b"content-type")
        if has_body and (content_type is None or not _is_accepted_media_type(content_type)):
            return UnsupportedMediaType(
                f"Content-Type {content_type or '(none)'} is not accepted; send application/json."
            )
        return None

    def _too_large(self, limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")

    def _counting(self, receive: Receive, limit: int) -> Receive:
        """A chunked body has no Content-Length to check up front, so count as it arrives;
        and time each piece of it, until the whole body is in."""
        received = 0
        body_done = False

        async def receive_counted() -> Message:
            nonlocal received, body_done
            # Only the body is timed: afterwards the app may wait on receive() for as long
            # as a response streams (Starlette listens for the client's disconnect).
            message = await (receive() if body_done else self._in_time(receive()))
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._too_large(limit)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        return receive_counted

    async def _in_time(self, pending: Awaitable[Message]) -> Message:
        if self.body_timeout_seconds <= 0:
            return await pending
        try:
            return await asyncio.wait_for(pending, self.body_timeout_seconds)
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {self.body_timeout_seconds:g} s."
            ) from None
