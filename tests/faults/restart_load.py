"""PostgreSQL restarted under a steady stream of requests: what each request got, what the
database kept, and how long the service took to serve again.

Clients loop: identify a new customer (email, phone, a profile field), then record an
action for it with an Idempotency-Key. A request answered 503 is sent again, unchanged,
until it is served, as a client told "503, Retry-After" would (identify needs no key; the
action keeps its key). Meanwhile the server is stopped, left down for a moment and
started again; the app keeps running throughout. Used by tests/faults/test_restart.py
(which checks) and bench/faults.py (which reports figures).
"""

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from app.core.db import UnitOfWork
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, make_project
from tests.faults.private_postgres import PrivatePostgres, StopMode
from tests.helpers import app_running, asgi_client

ACTION_TYPE = "load.order"
# When a client is told 503 it pauses this long, not Retry-After: the figure wanted is how
# soon the service could serve again, not how patient clients are.
PAUSE_AFTER_UNAVAILABLE = 0.1


@dataclass
class Attempt:
    kind: str  # "identify" or "action"
    key: str  # the email identified, or the action's Idempotency-Key
    email: str
    phone: str
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0
    status: int = 0
    # For a non-2xx answer: a problem+json with Retry-After, as promised.
    well_formed: bool = True
    # The id the answer named (the customer's, the action's), and identify's `result`.
    answered_id: str | None = None
    result: str | None = None
    # How many times this very request was answered 503 before.
    retry_of: int = 0

    def again(self) -> "Attempt":
        return Attempt(self.kind, self.key, self.email, self.phone, retry_of=self.retry_of + 1)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class RestartRun:
    attempts: list[Attempt]
    stop_began: float
    start_done: float
    in_flight_at_stop: list[Attempt]
    # The baseline: a new asyncpg connection and `SELECT 1`, sent as the server came back.
    raw_reconnect: float | None = None

    def figures(self) -> dict[str, Any]:
        first_served = min(
            (a.ended for a in self.attempts if a.ok and a.started >= self.start_done),
            default=None,
        )
        statuses: dict[int, int] = {}
        for attempt in self.attempts:
            statuses[attempt.status] = statuses.get(attempt.status, 0) + 1
        return {
            "requests": len(self.attempts),
            "statuses": dict(sorted(statuses.items())),
            "in_flight_at_stop": len(self.in_flight_at_stop),
            "in_flight_failed_503": sum(1 for a in self.in_flight_at_stop if a.status == 503),
            "outage_s": round(self.start_done - self.stop_began, 3),
            "recovery_s": (
                None if first_served is None else round(first_served - self.start_done, 3)
            ),
            "raw_reconnect_s": (
                None if self.raw_reconnect is None else round(self.raw_reconnect, 3)
            ),
            "requests_resent": sum(1 for a in self.attempts if a.retry_of > 0),
            # A 503 whose change had committed after all (the connection was lost during
            # COMMIT): identify sent again finds the customer and changes nothing.
            "applied_despite_503": sum(
                1 for a in self.attempts if a.retry_of > 0 and a.result == "unchanged"
            ),
            "unserved": len(self.unserved()),
        }

    def unserved(self) -> list[Attempt]:
        """Requests whose last answer was not a success (the load stopped meanwhile)."""
        last: dict[tuple[str, str], Attempt] = {}
        for attempt in self.attempts:
            last[(attempt.kind, attempt.key)] = attempt
        return [a for a in last.values() if not a.ok]


def identify_body(email: str, phone: str) -> dict[str, Any]:
    return {"identifiers": {"email": email, "phone": phone}, "profile": {"first_name": "Load"}}


def action_body(email: str, key: str) -> dict[str, Any]:
    return {
        "customer": {"email": email},
        "type": ACTION_TYPE,
        "occurred_at": "2026-11-01T10:00:00Z",
        "payload": {"order_id": key},
    }


async def declare_action_type(http: httpx.AsyncClient, owner: ProjectWithKey) -> None:
    schema = {"type": "object", "properties": {"order_id": {"type": "string"}}}
    response = await http.post(
        "/v1/action-types",
        headers=owner.admin_headers,
        json={"key": ACTION_TYPE, "payload_schema": schema},
    )
    assert response.status_code == 201, response.text


async def _send(http: httpx.AsyncClient, owner: ProjectWithKey, attempt: Attempt) -> None:
    if attempt.kind == "identify":
        response = await http.post(
            "/v1/customers/identify",
            headers=owner.admin_headers,
            json=identify_body(attempt.email, attempt.phone),
        )
    else:
        response = await http.post(
            "/v1/actions",
            headers=owner.admin_headers | {"Idempotency-Key": attempt.key},
            json=action_body(attempt.email, attempt.key),
        )
    attempt.ended = time.monotonic()
    attempt.status = response.status_code
    if not attempt.ok:
        attempt.well_formed = (
            response.headers.get("content-type") == "application/problem+json"
            and "retry-after" in response.headers
        )
    else:
        answer = response.json()
        if attempt.kind == "identify":
            attempt.answered_id, attempt.result = answer["customer"]["id"], answer["result"]
        else:
            attempt.answered_id = answer["id"]


async def restart_under_load(
    http: httpx.AsyncClient,
    owner: ProjectWithKey,
    *,
    stop: Callable[[], Awaitable[None]],
    start: Callable[[], Awaitable[None]],
    clients: int = 8,
    warmup: float = 0.5,
    outage: float = 0.5,
    settle: float = 0.5,
    tag: str = "r",
    database_url: str | None = None,
) -> RestartRun:
    """Load for `warmup` seconds, stop the server, wait `outage`, start it, load `settle`
    seconds more after the first request served again (at most 15 s), stop the load."""
    attempts: list[Attempt] = []
    running: set[int] = set()
    done = asyncio.Event()
    served_again = asyncio.Event()
    restarted_at = float("inf")

    async def client(number: int) -> None:
        sequence = 0
        while not done.is_set():
            email = f"{tag}-{number}-{sequence}@load.example"
            phone = f"+49151{number:02d}{sequence:06d}"
            if await _until_served(Attempt("identify", email, email, phone)):
                await _until_served(Attempt("action", f"{tag}-{number}-{sequence}", email, phone))
            sequence += 1

    async def _until_served(attempt: Attempt) -> bool:
        while True:
            attempts.append(attempt)
            running.add(id(attempt))
            try:
                await _send(http, owner, attempt)
            finally:
                running.discard(id(attempt))
            if attempt.ok and attempt.started >= restarted_at:
                served_again.set()
            if attempt.status != 503 or done.is_set():
                return attempt.ok
            await asyncio.sleep(PAUSE_AFTER_UNAVAILABLE)
            attempt = attempt.again()

    loops = [asyncio.create_task(client(n)) for n in range(clients)]
    try:
        await asyncio.sleep(warmup)
        stop_began = time.monotonic()
        in_flight = [a for a in attempts if id(a) in running]
        await stop()
        await asyncio.sleep(outage)
        await start()
        restarted_at = start_done = time.monotonic()
        raw_reconnect = await _raw_reconnect(database_url) if database_url else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(served_again.wait(), timeout=15)
        await asyncio.sleep(settle)
    finally:
        done.set()
        await asyncio.gather(*loops)
    return RestartRun(
        attempts=attempts,
        stop_began=stop_began,
        start_done=start_done,
        in_flight_at_stop=in_flight,
        raw_reconnect=raw_reconnect,
    )


async def _raw_reconnect(database_url: str) -> float:
    """How long a bare driver connection takes to answer once the server is back: the
    floor under the service's recovery (measured alongside the clients, on the same CPU)."""
    started = time.monotonic()
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()
    return time.monotonic() - started


@dataclass(frozen=True)
class Kept:
    """What the database holds for the run's project, per email and per action key."""

    customers: dict[str, list[Any]]  # email -> [(customer id, identifiers, changelog rows)]
    actions: dict[str, list[Any]]  # order id (= key) -> [action id]
    idempotency_keys: int


async def kept(database_url: str, owner: ProjectWithKey) -> Kept:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT e.value AS email, c.id, "
            "(SELECT count(*) FROM customer_identifiers i WHERE i.customer_id = c.id) AS ids, "
            "(SELECT count(*) FROM profile_changelog l WHERE l.customer_id = c.id) AS changes "
            "FROM customers c JOIN customer_identifiers e ON e.customer_id = c.id "
            "AND e.kind = 'email' WHERE c.project_id = $1",
            owner.project.id,
        )
        actions = await connection.fetch(
            "SELECT payload->>'order_id' AS key, id FROM actions "
            "WHERE project_id = $1 AND type = $2",
            owner.project.id,
            ACTION_TYPE,
        )
        keys = await connection.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE project_id = $1", owner.project.id
        )
    finally:
        await connection.close()
    customers: dict[str, list[Any]] = {}
    for row in rows:
        customers.setdefault(row["email"], []).append((str(row["id"]), row["ids"], row["changes"]))
    by_key: dict[str, list[Any]] = {}
    for row in actions:
        by_key.setdefault(row["key"], []).append(str(row["id"]))
    return Kept(customers=customers, actions=by_key, idempotency_keys=int(keys))


def integrity(run: RestartRun, stored: Kept) -> dict[str, int]:
    """What went wrong with the data, per kind of fault: all zero when nothing did."""
    emails = {a.email for a in run.attempts if a.kind == "identify"}
    keys = {a.key for a in run.attempts if a.kind == "action"}
    # Every customer of the run was made by the same kind of request: one with fewer
    # identifiers (email, phone) or another changelog than the rest is half of one.
    shapes = [(ids, changes) for found in stored.customers.values() for _, ids, changes in found]
    usual_changes = statistics.mode(changes for _, changes in shapes) if shapes else 0
    lost = 0
    for attempt in run.attempts:
        if attempt.ok and attempt.kind == "identify":
            found = stored.customers.get(attempt.email, [])
            lost += attempt.answered_id not in [customer_id for customer_id, _, _ in found]
        elif attempt.ok:
            lost += attempt.answered_id not in stored.actions.get(attempt.key, [])
    return {
        "customers_missing": len(emails - set(stored.customers)),
        "customers_duplicated": sum(len(f) - 1 for f in stored.customers.values() if len(f) > 1),
        "customers_half_applied": sum(1 for shape in shapes if shape != (2, usual_changes)),
        "actions_missing": len(keys - set(stored.actions)),
        "actions_duplicated": sum(len(ids) - 1 for ids in stored.actions.values() if len(ids) > 1),
        "idempotency_keys_unmatched": abs(stored.idempotency_keys - len(keys)),
        "answers_not_kept": lost,
        "unknown_rows": len(set(stored.customers) - emails) + len(set(stored.actions) - keys),
    }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


async def restart_private_server_under_load(
    server: PrivatePostgres, mode: StopMode, *, clients: int, tag: str, **timing: float
) -> tuple[RestartRun, Kept]:
    """An app on `server` (a pool of `clients` connections, quick to give up on a dead
    server, no housekeeping), a project of its own, `restart_under_load` stopping the
    server in `mode`; the run and what the database kept of it afterwards."""
    async with app_running(
        server.url,
        db_pool_size=clients,
        db_max_overflow=0,
        db_connect_timeout_seconds=2,
        loyalty_settle_interval_seconds=0,
    ) as app:
        owner = await make_project(UnitOfWork(app.state.database.sessions), name=tag)
        async with asgi_client(app) as http:
            await declare_action_type(http, owner)
            run = await restart_under_load(
                http,
                owner,
                stop=lambda: asyncio.to_thread(server.stop, mode),
                start=lambda: asyncio.to_thread(server.start),
                clients=clients,
                tag=tag,
                database_url=server.url,
                **timing,
            )
        return run, await kept(server.url, owner)
