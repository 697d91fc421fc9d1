"""FastAPI dependencies shared by every domain router: settings, database, unit of work.

All are `async def`: FastAPI runs plain `def` dependencies in a thread pool, which costs
more than the work they do.
"""

from typing import Annotated

from fastapi import Depends, Request

from app.core.clock import Clock
from app.core.db import Database, UnitOfWork
from app.core.rate_limit import RateLimiter
from app.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_unit_of_work(database: Annotated[Database, Depends(get_database)]) -> UnitOfWork:
    return UnitOfWork(database.sessions)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
ClockDep = Annotated[Clock, Depends(get_clock)]
