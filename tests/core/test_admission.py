"""Admission control: over its limit a process answers 503 `overloaded` at once, having
done nothing, while the requests it admitted go on and probes still answer."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app.core.admission import AdmissionMiddleware
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, identify
from tests.helpers import app_running, asgi_client


class HeldApp:
    """An ASGI app whose requests stay in flight until the test lets them go; its health
    endpoint answers at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.entered = asyncio.Condition()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/healthz":
            async with self.entered:
                self.inside += 1
                self.entered.notify_all()
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def until_inside(self, count: int) -> None:
        async with self.entered:
            await self.entered.wait_for(lambda: self.inside >= count)


@asynccontextmanager
async def _held_behind(
    max_in_flight: int, wait_seconds: float
) -> AsyncIterator[tuple[HeldApp, httpx.AsyncClient]]:
    """A HeldApp behind the middleware, and a client calling through both."""
    held = HeldApp()
    guarded = AdmissionMiddleware(held, max_in_flight=max_in_flight, wait_seconds=wait_seconds)
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield held, client


async def test_a_request_over_the_limit_waits_then_is_refused_at_once() -> None:
    async with _held_behind(max_in_flight=2, wait_seconds=0.2) as (held, client):
        admitted = [asyncio.create_task(client.get("/v1/x")) for _ in range(2)]
        await held.until_inside(2)
        started = time.monotonic()
        refused = await client.get("/v1/x")
        waited = time.monotonic() - started
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["type"].endswith(":overloaded")
        assert refused.json()["instance"] == "/v1/x"
        assert waited >= 0.2  # it waited for a slot before giving up
        assert held.inside == 2  # the refused request never reached the app
        assert (await client.get("/healthz")).status_code == 200  # probes pass a full process
        held.release.set()
        assert [r.status_code for r in await asyncio.gather(*admitted)] == [200, 200]


async def test_a_waiting_request_takes_the_first_slot_that_frees() -> None:
    async with _held_behind(max_in_flight=1, wait_seconds=5) as (held, client):
        first = asyncio.create_task(client.get("/v1/x"))
        await held.until_inside(1)
        second = asyncio.create_task(client.get("/v1/x"))
        await asyncio.sleep(0.05)
        assert held.inside == 1  # the second waits outside
        held.release.set()
        assert (await first).status_code == (await second).status_code == 200
        assert held.inside == 2


async def test_no_limit_lets_everything_in() -> None:
    async with _held_behind(max_in_flight=0, wait_seconds=0) as (held, client):
        requests = [asyncio.create_task(client.get("/v1/x")) for _ in range(50)]
        await held.until_inside(50)
        held.release.set()
        assert {r.status_code for r in await asyncio.gather(*requests)} == {200}


@pytest.fixture
async def one_slot(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app_running(database_url, max_requests_in_flight=1, admission_wait_seconds=0.2) as app,
        asgi_client(app) as client,
    ):
        yield client


async def test_the_service_refuses_what_it_cannot_take_and_writes_nothing(
    one_slot: httpx.AsyncClient, project: ProjectWithKey, database_url: str
) -> None:
    created = await identify(one_slot, project, {"identifiers": {"email": "jane@example.com"}})
    customer_id = created.json()["customer"]["id"]
    lock = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        # Hold the customer's row: the PATCH below waits on it, holding the only slot.
        transaction = lock.transaction()
        await transaction.start()
        await lock.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", customer_id)
        patch = asyncio.create_task(
            one_slot.patch(
                f"/v1/customers/{customer_id}",
                headers=project.admin_headers,
                json={"profile": {"first_name": "Jane"}},
            )
        )
        await _until_waiting_on_a_lock(lock)

        refused = await identify(one_slot, project, {"identifiers": {"email": "joe@example.com"}})
        assert refused.status_code == 503
        assert refused.json()["type"].endswith(":overloaded")
        assert refused.headers["retry-after"] == "1"
        assert (await one_slot.get("/readyz")).status_code == 200
        assert await lock.fetchval("SELECT count(*) FROM customers") == 1

        await transaction.rollback()
        assert (await patch).status_code == 200
    finally:
        await lock.close()
    retried = await identify(one_slot, project, {"identifiers": {"email": "joe@example.com"}})
    assert retried.status_code == 201


async def _until_waiting_on_a_lock(connection: asyncpg.Connection) -> None:
    for _ in range(400):
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the PATCH never waited on the row lock")
