"""Readiness: the database answers and its schema is at the code's migration head."""

from sqlalchemy.exc import DBAPIError, OperationalError

from app.core.db import UnitOfWork
from app.core.errors import ServiceUnavailable
from app.health import repository


async def check_readiness(uow: UnitOfWork, *, expected_revision: str) -> str:
    try:
        async with uow:
            applied = await repository.applied_revision(uow.session)
    except (OSError, OperationalError, DBAPIError) as error:
        raise ServiceUnavailable("The database is not reachable.") from error
    if applied != expected_revision:
        raise ServiceUnavailable(
            f"The database schema is at {applied or 'no revision'}, the code expects "
            f"{expected_revision}; run `cdp migrate`."
        )
    return applied
