"""Points: ledger, balances, exactness under concurrency and retries, pending and expiry."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.db import UnitOfWork
from app.loyalty import settlement
from tests.conftest import _asyncpg_dsn
from tests.factories import ProjectWithKey, identify, make_project
from tests.helpers import FakeClock, app_running, asgi_client

TABLES = ("point_transactions", "point_lots", "point_balances", "point_spends", "idempotency_keys")


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked_app(database_url: str, clock: FakeClock) -> AsyncIterator[FastAPI]:
    async with app_running(database_url, clock=clock, loyalty_settle_interval_seconds=0) as app:
        yield app


@pytest.fixture
async def http(clocked_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(clocked_app) as client:
        yield client


@pytest.fixture
async def shop(clocked_app: FastAPI, http: httpx.AsyncClient) -> ProjectWithKey:
    owner = await make_project(UnitOfWork(clocked_app.state.database.sessions), name="shop")
    for body in (
        {"code": "bonus", "name": "Bonus", "precision": 0, "lifetime_days": 30},
        {"code": "miles", "name": "Miles", "precision": 2},
    ):
        created = await http.post("/v1/point-accounts", headers=owner.admin_headers, json=body)
        assert created.status_code == 201, created.text
    return owner


async def _customer(http: httpx.AsyncClient, owner: ProjectWithKey, email: str) -> str:
    response = await identify(http, owner, {"identifiers": {"email": email}})
    customer_id: str = response.json()["customer"]["id"]
    return customer_id


async def _tx(
    http: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str, key: str, **body: Any
) -> httpx.Response:
    return await http.post(
        f"/v1/customers/{customer_id}/points/transactions",
        headers=owner.admin_headers | {"Idempotency-Key": key},
        json={"account": "bonus"} | body,
    )


async def _balances(
    http: httpx.AsyncClient, owner: ProjectWithKey, customer_id: str
) -> dict[str, dict[str, Any]]:
    """Balances by account, each figure a Decimal (compared with ints in the tests)."""
    response = await http.get(f"/v1/customers/{customer_id}/points", headers=owner.admin_headers)
    return {
        b["account"]: {k: Decimal(str(v)) for k, v in b.items() if k != "account"}
        for b in response.json()
    }


async def _ledger_matches_balances(database_url: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        mismatches = await connection.fetch(
            """
            SELECT b.customer_id, b.account_id, b.available + b.pending AS balance,
                   coalesce((SELECT sum(t.amount) FROM point_transactions t
                             WHERE t.customer_id = b.customer_id
                               AND t.account_id = b.account_id), 0) AS ledger,
                   coalesce((SELECT sum(l.remaining) FROM point_lots l
                             WHERE l.customer_id = b.customer_id
                               AND l.account_id = b.account_id), 0) AS lots
            FROM point_balances b
            """
        )
    finally:
        await connection.close()
    for row in mismatches:
        assert row["balance"] == row["ledger"] == row["lots"], dict(row)


async def _counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        return {t: await connection.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await connection.close()


class TestLedger:
    async def test_accrue_redeem_and_read(
        self, http: httpx.AsyncClient, shop: ProjectWithKey, database_url: str
    ) -> None:
        customer = await _customer(http, shop, "p@example.com")
        accrued = await _tx(
            http, shop, customer, "k1", type="accrual", amount="120", reference="order-1"
        )
        assert accrued.status_code == 201, accrued.text
        assert accrued.json()["expires_at"] is not None  # the account's 30-day lifetime
        redeemed = await _tx(http, shop, customer, "k2", type="redemption", amount=50)
        assert Decimal(str(redeemed.json()["amount"])) == Decimal(-50)
        adjusted = await _tx(http, shop, customer, "k3", type="adjustment", amount="-10")
        assert adjusted.status_code == 201
        balance = (await _balances(http, shop, customer))["bonus"]
        assert (balance["available"], balance["earned"], balance["spent"]) == (60, 120, 50)
        listed = await http.get(
            f"/v1/customers/{customer}/points/transactions",
            headers=shop.admin_headers,
            params={"type": "redemption"},
        )
        assert [t["reference"] for t in listed.json()["items"]] == [None]
        await _ledger_matches_balances(database_url)

    async def test_redeeming_beyond_the_balance_is_409_and_writes_nothing(
        self, http: httpx.AsyncClient, shop: ProjectWithKey, database_url: str
    ) -> None:
        customer = await _customer(http, shop, "short@example.com")
        await _tx(http, shop, customer, "a", type="accrual", amount=10)
        before = await _counts(database_url)
        response = await _tx(http, shop, customer, "b", type="redemption", amount=11)
        assert response.status_code == 409
        assert await _counts(database_url) == before

    @pytest.mark.parametrize(
        ("body", "pointer"),
        [
            ({"type": "accrual", "amount": 0}, "/amount"),
            ({"type": "accrual", "amount": -5}, "/amount"),
            ({"type": "accrual", "amount": "1.5"}, "/amount"),
            ({"type": "accrual", "amount": "abc"}, "/amount"),
            ({"type": "accrual", "amount": "1e13"}, "/amount"),
            ({"type": "accrual", "amount": 5, "account": "ghost"}, "/account"),
            ({"type": "expiry", "amount": 5}, "/type"),
        ],
    )
    async def test_bad_amounts_are_422_and_change_nothing(
        self,
        http: httpx.AsyncClient,
        shop: ProjectWithKey,
        database_url: str,
        body: dict[str, Any],
        pointer: str,
    ) -> None:
        customer = await _customer(http, shop, "bad@example.com")
        before = await _counts(database_url)
        response = await _tx(http, shop, customer, "bad-key", **body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["pointer"] == pointer
        assert await _counts(database_url) == before

    async def test_precision_follows_the_account(
        self, http: httpx.AsyncClient, shop: ProjectWithKey
    ) -> None:
        customer = await _customer(http, shop, "miles@example.com")
        ok = await _tx(http, shop, customer, "m1", account="miles", type="accrual", amount="12.25")
        too_fine = await _tx(
            http, shop, customer, "m2", account="miles", type="accrual", amount="0.001"
        )
        assert (ok.status_code, too_fine.status_code) == (201, 422)

    async def test_the_idempotency_key_is_required(
        self, http: httpx.AsyncClient, shop: ProjectWithKey
    ) -> None:
        customer = await _customer(http, shop, "nokey@example.com")
        response = await http.post(
            f"/v1/customers/{customer}/points/transactions",
            headers=shop.admin_headers,
            json={"account": "bonus", "type": "accrual", "amount": 1},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["location"] == "header"


class TestRetries:
    async def test_replay_returns_the_original_and_a_conflicting_replay_is_409(
        self, http: httpx.AsyncClient, shop: ProjectWithKey, database_url: str
    ) -> None:
        customer = await _customer(http, shop, "replay@example.com")
        first = await _tx(http, shop, customer, "same", type="accrual", amount=5)
        counts = await _counts(database_url)
        again = await _tx(http, shop, customer, "same", type="accrual", amount=5)
        assert (again.status_code, again.text) == (first.status_code, first.text)
        assert await _counts(database_url) == counts
        other = await _tx(http, shop, customer, "same", type="accrual", amount=6)
        assert other.status_code == 409
        assert (await _balances(http, shop, customer))["bonus"]["available"] == 5


async def test_100_concurrent_redemptions_against_30_points(
    http: httpx.AsyncClient, shop: ProjectWithKey, database_url: str
) -> None:
    customer = await _customer(http, shop, "rush@example.com")
    await _tx(http, shop, customer, "fund", type="accrual", amount=30)
    responses = await asyncio.gather(
        *(_tx(http, shop, customer, f"r{n}", type="redemption", amount=1) for n in range(100))
    )
    statuses = [r.status_code for r in responses]
    assert (statuses.count(201), statuses.count(409)) == (30, 70), set(statuses)
    balance = (await _balances(http, shop, customer))["bonus"]
    assert (balance["available"], balance["spent"]) == (0, 30)
    await _ledger_matches_balances(database_url)


class TestTime:
    async def test_pending_points_become_available_without_anyone_calling(
        self, http: httpx.AsyncClient, shop: ProjectWithKey, clock: FakeClock, database_url: str
    ) -> None:
        customer = await _customer(http, shop, "pending@example.com")
        later = (clock.now() + timedelta(days=14)).isoformat()
        await _tx(http, shop, customer, "p1", type="accrual", amount=40, available_at=later)
        assert (await _balances(http, shop, customer))["bonus"]["pending"] == 40
        refused = await _tx(http, shop, customer, "p2", type="redemption", amount=1)
        assert refused.status_code == 409
        clock.advance(timedelta(days=15))
        balance = (await _balances(http, shop, customer))["bonus"]
        assert (balance["available"], balance["pending"]) == (40, 0)
        spent = await _tx(http, shop, customer, "p3", type="redemption", amount=40)
        assert spent.status_code == 201
        await _ledger_matches_balances(database_url)

    async def test_points_expire_first_in_first_out(
        self,
        http: httpx.AsyncClient,
        shop: ProjectWithKey,
        clock: FakeClock,
        clocked_app: FastAPI,
        database_url: str,
    ) -> None:
        customer = await _customer(http, shop, "fifo@example.com")
        await _tx(http, shop, customer, "e1", type="accrual", amount=10)  # expires day 30
        clock.advance(timedelta(days=10))
        await _tx(http, shop, customer, "e2", type="accrual", amount=5)  # expires day 40
        clock.advance(timedelta(days=1))
        await _tx(http, shop, customer, "e3", type="redemption", amount=3)  # from the first lot
        clock.advance(timedelta(days=20))  # day 31: 7 left of the first lot expire
        assert (await _balances(http, shop, customer))["bonus"]["available"] == 5
        uow = UnitOfWork(clocked_app.state.database.sessions)
        assert await settlement.settle_due(uow, now=clock.now()) == 1
        assert await settlement.settle_due(uow, now=clock.now()) == 0  # settled once
        clock.advance(timedelta(days=10))  # day 41: the second lot expires too
        await settlement.settle_due(uow, now=clock.now())
        balance = (await _balances(http, shop, customer))["bonus"]
        assert (balance["available"], balance["expired"], balance["spent"]) == (0, 12, 3)
        expiries = await http.get(
            f"/v1/customers/{customer}/points/transactions",
            headers=shop.admin_headers,
            params={"type": "expiry"},
        )
        assert sorted(Decimal(str(t["amount"])) for t in expiries.json()["items"]) == [-7, -5]
        await _ledger_matches_balances(database_url)


class TestReversal:
    async def test_reversing_a_redemption_gives_the_same_lots_back(
        self, http: httpx.AsyncClient, shop: ProjectWithKey, database_url: str
    ) -> None:
        customer = await _customer(http, shop, "rev@example.com")
        await _tx(http, shop, customer, "v1", type="accrual", amount=20)
        redemption = (await _tx(http, shop, customer, "v2", type="redemption", amount=8)).json()
        url = f"/v1/customers/{customer}/points/transactions/{redemption['id']}/reverse"
        reversed_ = await http.post(url, headers=shop.admin_headers)
        assert reversed_.status_code == 201, reversed_.text
        assert reversed_.json()["reverses_id"] == redemption["id"]
        again = await http.post(url, headers=shop.admin_headers)
        assert again.status_code == 409
        balance = (await _balances(http, shop, customer))["bonus"]
        assert (balance["available"], balance["spent"]) == (20, 0)
        await _ledger_matches_balances(database_url)

    async def test_an_accrual_is_reversible_only_while_untouched(
        self, http: httpx.AsyncClient, shop: ProjectWithKey
    ) -> None:
        customer = await _customer(http, shop, "acc@example.com")
        accrual = (await _tx(http, shop, customer, "w1", type="accrual", amount=10)).json()
        await _tx(http, shop, customer, "w2", type="redemption", amount=1)
        url = f"/v1/customers/{customer}/points/transactions/{accrual['id']}/reverse"
        assert (await http.post(url, headers=shop.admin_headers)).status_code == 409


async def test_merge_sums_balances_and_repoints_the_ledger(
    http: httpx.AsyncClient, shop: ProjectWithKey, database_url: str
) -> None:
    target = await _customer(http, shop, "t@example.com")
    source = await _customer(http, shop, "s@example.com")
    await _tx(http, shop, target, "m1", type="accrual", amount=10)
    await _tx(http, shop, source, "m2", type="accrual", amount=7)
    await _tx(http, shop, source, "m3", account="miles", type="accrual", amount="1.5")
    merged = await http.post(
        "/v1/customers/merge",
        headers=shop.admin_headers,
        json={"target_id": target, "source_ids": [source]},
    )
    assert merged.status_code == 200, merged.text
    balances = await _balances(http, shop, target)
    assert (balances["bonus"]["available"], balances["miles"]["available"]) == (17, Decimal("1.5"))
    ledger = await http.get(
        f"/v1/customers/{target}/points/transactions", headers=shop.admin_headers
    )
    origins = {t["origin_customer_id"] for t in ledger.json()["items"]}
    assert {t["customer_id"] for t in ledger.json()["items"]} == {target}
    assert origins == {target, source}
    await _ledger_matches_balances(database_url)
