"""The database: engine, sessions and the unit of work that owns each transaction."""

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar, cast

from sqlalchemy import MetaData, Select, Table, event, make_url, select
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.core.constraints import domain_error_for_constraint
from app.core.db_errors import CommitUnconfirmed, DatabaseUnreachable, is_connection_lost
from app.settings import Settings

# Constraint names are part of the contract: errors are translated by name (core/constraints.py).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, for statements that skip the ORM on hot paths."""
    return cast(Table, model.__table__)


ModelT = TypeVar("ModelT", bound=Base)


def customer_history_query(
    model: type[ModelT],
    *,
    project_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    before_id: uuid.UUID | None,
    limit: int,
) -> Select[ModelT]:
    """A page of a per-customer history table (project_id, customer_id, time-ordered id),
    newest first: the shape every changelog and ledger shares."""
    table = table_of(model)
    query = (
        select(model)
        .where(table.c.project_id == project_id, table.c.customer_id.in_(customer_ids))
        .order_by(table.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(table.c.id < before_id)
    return query


def project_page_query(
    model: type[ModelT], *, project_id: uuid.UUID, after_id: uuid.UUID | None, limit: int
) -> Select[ModelT]:
    """A page of a project's rows in id order (oldest first), after a cursor: the shape
    of every list endpoint over a project-scoped table. Callers add their own filters."""
    table = table_of(model)
    query = select(model).where(table.c.project_id == project_id).order_by(table.c.id).limit(limit)
    if after_id is not None:
        query = query.where(table.c.id > after_id)
    return query


_ACCEPTED_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})


def async_database_url(raw: str) -> URL:
    """The URL users write (postgresql://...), as SQLAlchemy's asyncpg driver reads it."""
    url = make_url(raw)
    if url.drivername not in _ACCEPTED_SCHEMES:
        raise ValueError(f"CDP_DATABASE_URL must be a postgresql:// URL, not {url.drivername}://")
    query = dict(url.query)
    # libpq spells it sslmode; asyncpg's connect() takes the same values as `ssl`.
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    return url.set(drivername="postgresql+asyncpg", query=query)


def plain_database_url(url: URL) -> str:
    """The asyncpg-native DSN (no SQLAlchemy driver suffix), for raw connections."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(url: URL, settings: Settings, *, as_owner: bool = False) -> Database:
    """The service's engine: its connections act as `settings.db_role` (migration 0015),
    unless `as_owner` (schema maintenance, such as creating partitions)."""
    server_settings = {
        "application_name": "cdp",
        "statement_timeout": str(settings.db_statement_timeout_ms),
    }
    if settings.db_role and not as_owner:
        # A startup parameter, not SET ROLE: RESET ROLE comes back to it.
        server_settings["role"] = settings.db_role
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        # No ping per checkout (a round trip on every request): a connection found dead is
        # reported by the statement that meets it, and SQLAlchemy then drops every pooled
        # connection older than it, so one request per outage pays, not one per connection.
        pool_pre_ping=False,
        # Errors name the statement, never its values: they are personal data (emails,
        # phones), and an error's text ends up in the log.
        hide_parameters=True,
        connect_args={
            "server_settings": server_settings,
            # A server that does not answer (a network cut) fails the request within this,
            # instead of asyncpg's 60 s.
            "timeout": settings.db_connect_timeout_seconds,
        },
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unreachable)
    return Database(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False))


def _connect_or_unreachable(
    dialect: Dialect, _record: object, cargs: tuple[object, ...], cparams: dict[str, object]
) -> object:
    """Open a connection as SQLAlchemy would, naming a failure to reach the server.

    A refused, reset or timed-out connect comes out of the driver as a bare OSError or
    TimeoutError, which SQLAlchemy passes on unwrapped; renamed here, it is told apart
    from any other OSError a request might meet, and answered with a 503.
    """
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as error:
        raise DatabaseUnreachable(f"{type(error).__name__}: {error}") from error


class UnitOfWork:
    """One use case, one transaction: committed when the block completes, rolled back otherwise.

    Usage in a service: `async with uow: ...`. Repositories may flush, never commit.
    A unique or foreign-key violation leaving the block becomes the domain error its
    constraint name maps to.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._discard = False

    def fork(self) -> "UnitOfWork":
        """A unit of work of its own on the same database, for a task running alongside."""
        return UnitOfWork(self._sessions)

    def discard(self) -> None:
        """Roll back at the end of the block even if it completes: a dry run's preview is
        the real use case, executed and thrown away, so it cannot drift from the real one."""
        self._discard = True

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork.session used outside `async with uow:`")
        return self._session

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncSession]:
        """A session without a transaction (autocommit): for reads of one statement each.

        Saves the BEGIN and COMMIT round trips; each statement sees its own snapshot, so
        a read that must be consistent across tables has to be a single statement.
        """
        async with self._sessions() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("UnitOfWork is not re-entrant")
        self._session = self._sessions()
        await self._session.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        self._session = None
        discard, self._discard = self._discard, False
        try:
            if exc is None and not discard:
                await _commit(session)
            else:
                await _rollback(session)
        except IntegrityError as commit_error:
            await session.rollback()
            raise _translated(commit_error) from commit_error
        finally:
            await session.close()
        if isinstance(exc, IntegrityError):
            raise _translated(exc) from exc


async def _commit(session: AsyncSession) -> None:
    """COMMIT; a connection lost meanwhile leaves the outcome unknown, and says so (the
    server may have committed before the answer was lost: never assume either way)."""
    try:
        await session.commit()
    except DBAPIError as error:
        if is_connection_lost(error):
            raise CommitUnconfirmed() from error
        raise


async def _rollback(session: AsyncSession) -> None:
    """ROLLBACK; on a lost connection there is nothing to do (the server rolls back what a
    dead connection left), and the error that ended the block is the one to report."""
    try:
        await session.rollback()
    except DBAPIError as error:
        if not is_connection_lost(error):
            raise


def _translated(error: IntegrityError) -> Exception:
    domain_error = domain_error_for_constraint(constraint_name(error))
    return domain_error if domain_error is not None else error


def constraint_name(error: IntegrityError) -> str | None:
    """The violated constraint: SQLAlchemy wraps asyncpg's error, which carries the name."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    return None
