"""The async world the sync state machine drives: one event loop in a thread of its own.

Hypothesis runs stateful rules as plain functions, while the app, its HTTP client and
asyncpg are async and bound to the loop they were made on. So one loop runs in a
background thread for the whole test; every rule and every check hands it a coroutine
and waits for the answer. The app, the client and the checks' database connection are
made on that loop once, and shared by every example (each example has its own project).
"""

import asyncio
import json
import threading
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import make_url

from app.core.db import UnitOfWork
from tests.factories import ProjectWithKey, make_project
from tests.helpers import app_running, asgi_client

ResultT = TypeVar("ResultT")
MAX_BURST = 6  # requests sent at the same time, at most


class LoopThread:
    """An event loop running forever in a daemon thread; `run` waits for one coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="invariants-loop")
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class InvariantRuntime:
    """The app with its lifespan entered, an in-process client, and a connection for checks."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.thread = LoopThread()
        self._stack = AsyncExitStack()
        self.app: FastAPI
        self.client: httpx.AsyncClient
        self.db: asyncpg.Pool
        self.examples = 0  # how many examples (projects) and checks the run went through
        self.checks = 0
        self.bursts = 0  # steps of concurrent requests, and how many requests they sent
        self.burst_requests = 0
        self.thread.run(self._start())

    async def _start(self) -> None:
        # No periodic settling of points: the machine's clock does not move, and a job
        # touching balances between two checks would be noise, not a finding.
        # Few connections (the database is shared with the rest of the suite), but one for
        # each request of the largest burst: its requests run all at once, none waits for
        # a connection while the others commit.
        self.app = await self._stack.enter_async_context(
            app_running(
                self.database_url,
                loyalty_settle_interval_seconds=0,
                db_pool_size=MAX_BURST,
                db_max_overflow=0,
            )
        )
        self.client = await self._stack.enter_async_context(asgi_client(self.app))
        dsn = make_url(self.database_url).set(drivername="postgresql")
        # The checks' own connections: the ownership and balance queries run side by side.
        self.db = await asyncpg.create_pool(
            dsn.render_as_string(hide_password=False), min_size=2, max_size=2, init=_json_codec
        )
        self._stack.push_async_callback(self.db.close)

    def run(self, coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
        return self.thread.run(coroutine)

    def new_project(self, name: str) -> ProjectWithKey:
        uow = UnitOfWork(self.app.state.database.sessions)
        return self.run(make_project(uow, name=name))

    def close(self) -> None:
        try:
            self.thread.run(self._stack.aclose())
        finally:
            self.thread.stop()


async def _json_codec(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
