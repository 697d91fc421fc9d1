"""The id of the request being handled, for logs, problem bodies and changelog rows."""

import re
from contextvars import ContextVar, Token

from app.core.ids import new_id

# Only ids that are safe to copy into logs and headers are accepted from clients.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def accepted_request_id(candidate: str | None) -> str:
    """The client's id if it is safe to echo, else a new one."""
    if candidate is not None and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return new_id().hex


def bind_request_id(request_id: str) -> Token[str | None]:
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)
