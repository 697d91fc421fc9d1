"""Small test utilities: running an app with its lifespan, running a coroutine from sync code."""

import asyncio
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings

ResultT = TypeVar("ResultT")


def settings_for_tests(database_url: str, **overrides: Any) -> Settings:
    overrides.setdefault("job_workers", 0)  # tests drive app.jobs.service.run_one themselves
    # Housekeeping off: tests run it by hand, and a round that fires mid-test would add
    # statements and rows to whatever that test measures.
    overrides.setdefault("segments_schedule_seconds", 0)
    overrides.setdefault("loyalty_settle_interval_seconds", 0)
    overrides.setdefault("import_schedule_seconds", 0)
    overrides.setdefault("idempotency_purge_interval_seconds", 0)
    # The concurrency tests fire hundreds of requests at once at one in-process app;
    # tests/core/test_admission.py checks the limit itself.
    overrides.setdefault("max_requests_in_flight", 0)
    # The tests' FTP servers listen on 127.0.0.1; tests/imports/test_ftp_addresses.py
    # checks the refusal of private addresses with this off.
    overrides.setdefault("import_ftp_allow_private_addresses", True)
    return Settings(database_url=database_url, log_level="WARNING", **overrides)


class FakeClock:
    """A clock tests move by hand: time passes only when they say so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


@asynccontextmanager
async def app_running(
    database_url: str, *, clock: FakeClock | None = None, **overrides: Any
) -> AsyncIterator[FastAPI]:
    """An app with its lifespan entered, as a server would run it."""
    app = create_app(settings_for_tests(database_url, **overrides), clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process; app errors come back as 500s, as from a server."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def run_sync(coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
    """Run a coroutine to completion from sync code, even while an event loop is running."""
    result: list[ResultT] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


# How long a `cdp serve` started by a test may take to answer /readyz (a busy machine).
SERVER_STARTUP_SECONDS = 60


def wait_until_ready(
    base_url: str, process: subprocess.Popen[Any], output: Callable[[], str]
) -> None:
    """Wait for a `cdp serve` a test started to answer /readyz; fail with its `output` if
    it exits first."""
    deadline = time.monotonic() + SERVER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{output()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("server did not become ready")
