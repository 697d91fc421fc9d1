"""The database connection lost in the middle of a request: a 503 problem with Retry-After,
never a 500, never half a use case, and the next request served without a restart."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app.core.clock import SystemClock
from app.core.db import UnitOfWork
from app.jobs import service as jobs_service
from app.jobs.models import Job
from app.jobs.service import ProgressReporter
from app.jobs.worker import work_forever
from tests.conftest import _asyncpg_dsn
from tests.core.test_problems import assert_problem
from tests.factories import ProjectWithKey, identify, make_project
from tests.faults.proxy import COMMIT_MESSAGE, Cut
from tests.faults.support import assert_unavailable, footprint, proxied_app
from tests.helpers import app_running, asgi_client

NEW_CUSTOMER: dict[str, Any] = {
    "identifiers": {
        "email": "cut@example.com",
        "phone": "+4915100000001",
        "discount_cards": ["CUT-1", "CUT-2"],
    },
    "profile": {"first_name": "Cut"},
}


def _action(email: str, order_id: str) -> dict[str, Any]:
    return {
        "customer": {"email": email},
        "type": "order.placed",
        "occurred_at": "2026-11-01T10:00:00Z",
        "payload": {"order_id": order_id},
    }


async def _declare_order_type(http: httpx.AsyncClient, owner: ProjectWithKey) -> None:
    schema = {"type": "object", "properties": {"order_id": {"type": "string"}}}
    declared = await http.post(
        "/v1/action-types",
        headers=owner.admin_headers,
        json={"key": "order.placed", "payload_schema": schema},
    )
    assert declared.status_code == 201, declared.text


async def test_a_connection_cut_mid_transaction_is_a_503_that_applied_nothing(
    database_url: str,
) -> None:
    async with proxied_app(database_url) as faulty:
        before = await footprint(database_url, faulty.owner.project.id)
        # Identify writes the customer, then its identifiers, then the changelog: cut at
        # the changelog, when the first two are written but not committed.
        cut = faulty.proxy.trip(b"profile_changelog", cut=Cut.BEFORE)
        response = await identify(faulty.http, faulty.owner, NEW_CUSTOMER)
        assert cut.is_set()
        detail = assert_unavailable(response)
        assert "rolled back" in detail
        assert await footprint(database_url, faulty.owner.project.id) == before

        # The same app, not restarted, serves the retry: all of it, once.
        retried = await identify(faulty.http, faulty.owner, NEW_CUSTOMER)
        assert retried.status_code == 201, retried.text
        assert retried.json()["result"] == "created"
        after = await footprint(database_url, faulty.owner.project.id)
        assert after["customers"] == 1
        assert after["customer_identifiers"] == 4
        assert after["profile_changelog"] > 0


async def test_a_connection_lost_during_commit_is_a_503_and_a_retry_applies_nothing_twice(
    database_url: str,
) -> None:
    async with proxied_app(database_url) as faulty:
        http, owner = faulty.http, faulty.owner
        await _declare_order_type(http, owner)
        # The COMMIT reaches the server, its answer never reaches the service.
        committed = faulty.proxy.trip(COMMIT_MESSAGE, cut=Cut.AFTER_REPLY)
        response = await identify(http, owner, NEW_CUSTOMER)
        assert committed.is_set()
        assert "may or may not have been applied" in assert_unavailable(response)
        applied = await footprint(database_url, owner.project.id)
        assert applied["customers"] == 1
        assert applied["customer_identifiers"] == 4
        # identify is its own idempotency key: the retry finds the customer whole.
        retried = await identify(http, owner, NEW_CUSTOMER)
        assert retried.status_code == 200, retried.text
        assert retried.json()["result"] == "unchanged"
        assert await footprint(database_url, owner.project.id) == applied

        # An action without a key: the service reports the loss and does not run the
        # insert again by itself (that would store it twice).
        faulty.proxy.trip(COMMIT_MESSAGE, cut=Cut.AFTER_REPLY)
        lost = await http.post(
            "/v1/actions", headers=owner.admin_headers, json=_action("cut@example.com", "A-1")
        )
        assert_unavailable(lost)
        assert (await footprint(database_url, owner.project.id))["actions"] == 1

        # With an Idempotency-Key the client's retry replays the answer it never got.
        faulty.proxy.trip(COMMIT_MESSAGE, cut=Cut.AFTER_REPLY)
        keyed = owner.admin_headers | {"Idempotency-Key": "order-A-2"}
        body = _action("cut@example.com", "A-2")
        assert_unavailable(await http.post("/v1/actions", headers=keyed, json=body))
        replayed = await http.post("/v1/actions", headers=keyed, json=body)
        assert replayed.status_code == 201, replayed.text
        again = await http.post("/v1/actions", headers=keyed, json=body)
        assert again.content == replayed.content
        assert (await footprint(database_url, owner.project.id))["actions"] == 2


async def test_while_the_database_refuses_connections_requests_are_503_then_served_again(
    database_url: str,
) -> None:
    async with proxied_app(database_url) as faulty:
        http, owner = faulty.http, faulty.owner
        first = await identify(http, owner, {"identifiers": {"email": "a@example.com"}})
        assert first.status_code == 201, first.text

        faulty.proxy.refuse(True)
        assert faulty.proxy.drop_all() >= 1
        # The pooled connection is found dead, then no new one can be opened.
        for email in ("b@example.com", "c@example.com"):
            assert_unavailable(await identify(http, owner, {"identifiers": {"email": email}}))
        assert_unavailable(await http.get("/readyz"))
        assert (await http.get("/healthz")).status_code == 200

        faulty.proxy.refuse(False)
        back = await identify(http, owner, {"identifiers": {"email": "b@example.com"}})
        assert back.status_code == 201, back.text
        assert (await footprint(database_url, owner.project.id))["customers"] == 2


async def test_a_database_that_does_not_answer_is_a_503_within_the_connect_timeout(
    database_url: str,
) -> None:
    async with proxied_app(database_url, db_connect_timeout_seconds=0.5) as faulty:
        faulty.proxy.stall(True)
        faulty.proxy.drop_all()
        started = asyncio.get_running_loop().time()
        response = await identify(faulty.http, faulty.owner, {"identifiers": {"email": "s@x.io"}})
        elapsed = asyncio.get_running_loop().time() - started
        assert_unavailable(response)
        assert elapsed < 5
        faulty.proxy.stall(False)
        back = await identify(faulty.http, faulty.owner, {"identifiers": {"email": "s@x.io"}})
        assert back.status_code == 201, back.text


@pytest.fixture
async def holder(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, outside the service's pool."""
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        yield connection
    finally:
        await connection.close()


async def _waiting_backend(connection: asyncpg.Connection) -> int:
    """The service's backend that waits for a lock: the request is mid-transaction."""
    for _ in range(500):
        pid = await connection.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'cdp' AND wait_event_type = 'Lock'"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.01)
    raise AssertionError("the request never waited for the lock")


async def test_a_backend_terminated_mid_request_is_a_503_and_its_key_is_free_again(
    database_url: str,
    client: httpx.AsyncClient,
    project: ProjectWithKey,
    holder: asyncpg.Connection,
) -> None:
    created = await identify(client, project, {"identifiers": {"email": "held@example.com"}})
    customer_id = created.json()["customer"]["id"]
    account = {"code": "bonus", "name": "Bonus", "precision": 0}
    assert (
        await client.post("/v1/point-accounts", headers=project.admin_headers, json=account)
    ).status_code == 201
    before = await footprint(database_url, project.project.id)
    headers = project.admin_headers | {"Idempotency-Key": "accrual-1"}
    body = {"account": "bonus", "type": "accrual", "amount": 10}
    url = f"/v1/customers/{customer_id}/points/transactions"

    # Another transaction (a slow merge, say) holds the customer's row. The request claims
    # its key, then waits for that row: its backend is ended there, mid-transaction.
    held = holder.transaction()
    await held.start()
    await holder.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", uuid.UUID(customer_id))
    request = asyncio.create_task(client.post(url, headers=headers, json=body))
    terminated = await holder.fetchval(
        "SELECT pg_terminate_backend($1)", await _waiting_backend(holder)
    )
    assert terminated
    response = await request
    assert "rolled back" in assert_unavailable(response)
    # The key's claim went with the transaction: the retry is not taken for another request.
    await held.rollback()  # the merge is done: the row is free
    assert await footprint(database_url, project.project.id) == before
    ledger = "SELECT count(*) FROM point_transactions WHERE customer_id = $1"
    assert await holder.fetchval(ledger, uuid.UUID(customer_id)) == 0

    retried = await client.post(url, headers=headers, json=body)
    assert retried.status_code == 201, retried.text
    assert (await client.post(url, headers=headers, json=body)).content == retried.content
    assert await holder.fetchval(ledger, uuid.UUID(customer_id)) == 1


async def test_no_free_connection_within_the_pool_timeout_is_a_503(
    database_url: str, holder: asyncpg.Connection
) -> None:
    async with app_running(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2
    ) as app:
        owner = await make_project(UnitOfWork(app.state.database.sessions), name="busy")
        async with asgi_client(app) as http:
            created = await identify(http, owner, {"identifiers": {"email": "busy@x.io"}})
            customer_id = created.json()["customer"]["id"]
            held = holder.transaction()
            await held.start()
            await holder.execute(
                "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", uuid.UUID(customer_id)
            )
            # The pool's only connection waits, inside a request, for the locked row.
            patch = asyncio.create_task(
                http.patch(
                    f"/v1/customers/{customer_id}",
                    headers=owner.admin_headers,
                    json={"profile": {"first_name": "Slow"}},
                )
            )
            await _waiting_backend(holder)
            busy = await http.get(f"/v1/customers/{customer_id}", headers=owner.admin_headers)
            await held.rollback()
            assert (await patch).status_code == 200
            served = await http.get(f"/v1/customers/{customer_id}", headers=owner.admin_headers)
    assert "busy" in assert_unavailable(busy)
    assert served.status_code == 200
    assert served.json()["profile"]["first_name"] == "Slow"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_the_job_worker_outlives_an_outage_and_then_runs_what_waited(
    database_url: str, uow: UnitOfWork
) -> None:
    ran: list[uuid.UUID] = []

    async def noop(_uow: UnitOfWork, job: Job, _progress: ProgressReporter) -> dict[str, Any]:
        ran.append(job.id)
        return {}

    logged = _Records()
    logger = logging.getLogger("app.jobs.worker")
    logger.addHandler(logged)
    async with proxied_app(database_url) as faulty:
        faulty.proxy.refuse(True)
        faulty.proxy.drop_all()
        worker = asyncio.create_task(
            work_forever(
                faulty.app.state.database,
                SystemClock(),
                worker_id="faults",
                handlers={"faults.noop": noop},
                poll_seconds=0.05,
            )
        )
        try:
            await _until(lambda: len(logged.records) >= 2)
            async with uow:
                job = await jobs_service.enqueue(
                    uow.session, project_id=faulty.owner.project.id, kind="faults.noop", payload={}
                )
            faulty.proxy.refuse(False)
            await _until(lambda: bool(ran))
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            logger.removeHandler(logged)
    assert ran == [job.id]
    # An outage is not a bug: a warning per round, no stack trace.
    assert {r.getMessage() for r in logged.records} == {
        "job worker round skipped: database unavailable"
    }
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in logged.records)


async def test_a_database_error_that_is_not_an_outage_is_still_a_500(database_url: str) -> None:
    async with app_running(database_url) as app:

        @app.get("/test/bad-sql")
        async def bad_sql() -> None:
            async with UnitOfWork(app.state.database.sessions) as uow:
                await uow.session.execute(text("SELECT * FROM no_such_table"))

        async with asgi_client(app) as http:
            response = await http.get("/test/bad-sql")
    assert_problem(response, 500)
    assert "retry-after" not in response.headers
