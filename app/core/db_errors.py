"""Telling "the database is away" from a bug: which errors are a 503, not a 500.

A connection can be lost at any statement (a network cut, a failover, PostgreSQL
restarted or a backend terminated), and a new one can fail to open while the server is
down or starting. None of that is the request's fault or the service's: the client is
told to come back (503 with Retry-After). SQLAlchemy has already invalidated the pool's
connections when it saw the loss, so the next request opens fresh ones: the service
recovers by itself once the server answers again.

Nothing here retries. A write whose connection was lost is reported, never run again by
the service: only the client knows whether running it twice is harmless (identify is;
an action or a points transaction is, with its Idempotency-Key).
"""

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.core.errors import ServiceUnavailable

# How long a client should wait before trying again: the pool reconnects at the next
# request, so this is about the server coming back (a restart takes seconds).
RETRY_AFTER_SECONDS = 2

# SQLSTATEs that mean the connection, not the statement, failed: class 08 (connection
# exception), the server shutting down or starting (57P01-57P03), no slot left (53300).
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_UNAVAILABLE_CLASSES = frozenset({"08"})
# The statement ran past CDP_DB_STATEMENT_TIMEOUT_MS (or was cancelled): the server is
# overloaded or a lock is held long, not a bug of the request; the transaction is rolled back.
_TIMED_OUT_STATE = "57014"


class DatabaseUnreachable(Exception):
    """Raised when a new connection to the database cannot be opened (refused, reset,
    no such socket, timed out): the socket errors of a connect, told apart from any other
    OSError a request might meet."""


class DatabaseUnavailable(ServiceUnavailable):
    """The 503 a lost or unreachable database becomes."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class CommitUnconfirmed(DatabaseUnavailable):
    """Raised when the connection was lost during COMMIT: the change may have been applied."""

    def __init__(self) -> None:
        super().__init__(
            "The connection to the database was lost while committing: the change may or "
            "may not have been applied. Retry with the same Idempotency-Key (identify "
            "needs none) to get its outcome without applying it twice."
        )


def is_connection_lost(error: BaseException) -> bool:
    """Whether `error` (as SQLAlchemy or asyncpg raised it) means the connection is gone or
    the server cannot take one, rather than that the statement was wrong."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    for cause in _chain(error):
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and (
            state in _UNAVAILABLE_STATES or state[:2] in _UNAVAILABLE_CLASSES
        ):
            return True
        # asyncpg's own check before using a connection it already knows is closed.
        if isinstance(cause, asyncpg.InterfaceError) and "connection is closed" in str(cause):
            return True
    return False


def unavailable_error(error: BaseException) -> DatabaseUnavailable | None:
    """The 503 to answer for `error`, or None when it is not about reaching the database."""
    if isinstance(error, DatabaseUnavailable):
        return error
    if isinstance(error, DatabaseUnreachable):
        return DatabaseUnavailable("The database is not reachable; retry later.")
    if isinstance(error, PoolTimeout):
        return DatabaseUnavailable(
            "Every database connection is busy (or the database is slow to answer); retry later."
        )
    if any(getattr(cause, "sqlstate", None) == _TIMED_OUT_STATE for cause in _chain(error)):
        return DatabaseUnavailable(
            "The database did not answer within the statement timeout; the transaction "
            "was rolled back. Retry later."
        )
    if is_connection_lost(error):
        return DatabaseUnavailable(
            "The connection to the database was lost; the transaction in progress was "
            "rolled back. Retry later."
        )
    return None


def brief(error: BaseException) -> str:
    """The error's type and first line, for a log line: an outage is not a bug, and its
    trace (and the SQL parameters SQLAlchemy appends) would only fill the log."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _chain(error: BaseException) -> list[BaseException]:
    """The error and what it wraps: SQLAlchemy's error, the adapter's, asyncpg's."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found and len(found) < 5:
        found.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return found
