"""Readiness: the database answers and its schema is at the code's migration head."""

from sqlalchemy.exc import DBAPIError

from app.core.db import UnitOfWork
from app.core.db_errors import DatabaseUnavailable, DatabaseUnreachable
from app.core.errors import ServiceUnavailable
from app.health import repository


async def check_readiness(uow: UnitOfWork, *, expected_revision: str) -> str:
    try:
        async with uow:
            applied = await repository.applied_revision(uow.session)
    # Any database error: a readiness probe answers "not ready", whatever the cause.
    except (OSError, DBAPIError, DatabaseUnreachable, DatabaseUnavailable) as error:
        raise DatabaseUnavailable("The database is not reachable.") from error
    if applied != expected_revision:
        raise ServiceUnavailable(
            f"The database schema is at {applied or 'no revision'}, the code expects "
            f"{expected_revision}; run `cdp migrate`."
        )
    return applied
